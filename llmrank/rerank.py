"""Rerank a first-stage run with any :class:`~llmrank.rankers.base.Ranker`.

The ranker's own ``score_lists`` does the batching (pointwise families batch pairs, FIRST
plugs in its sliding windows); this module hands it chunks of queries at a time, so batches
span queries, times the chunks and turns scores into a best-first run. Under ``accelerate launch`` the queries are split across
processes (``PartialState.split_between_processes``-style contiguous shards), the results are
gathered with ``gather_object`` and deduplicated by qid, and only the main process writes:
nothing is dropped or duplicated, whatever the number of processes.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from llmrank.data.record import Doc, RankingList
from llmrank.fusion import fuse
from llmrank.runs import Run, Topics, truncate

#: queries scored together by default: enough for cross-query batches of pairs / FIRST windows,
#: few enough that the tokenized pairs of one chunk stay small (64 x 100 pairs)
QUERIES_PER_CHUNK = 64

#: how ``per_query_ms`` is defined, written into the latency JSON beside the numbers
PER_QUERY_MS_DEFINITION = (
    "queries are scored together in chunks of queries_per_chunk (cross-query batching); a query's ms is "
    "its share of its chunk's scoring wall time, proportional to its number of (query, document) pairs"
)


@dataclass
class LatencyStats:
    """Per-query latency and throughput of one reranking job.

    Queries are scored in chunks (cross-query batching), so a query has no latency of its own:
    ``per_query_ms`` is each query's share of its chunk's scoring time, by pair count
    (:data:`PER_QUERY_MS_DEFINITION`). With ``queries_per_chunk=1`` it is the plain per-query time."""

    per_query_ms: dict[str, float] = field(default_factory=dict)
    pairs: int = 0
    wall_s: float = 0.0
    model_s: float = 0.0
    num_processes: int = 1
    queries_per_chunk: int = 1
    per_query_ms_definition: str = PER_QUERY_MS_DEFINITION

    def summary(self) -> dict[str, Any]:
        ms = list(self.per_query_ms.values())
        return {
            "queries": len(ms),
            "pairs": self.pairs,
            "num_processes": self.num_processes,
            "total_s": round(self.wall_s, 4),
            "model_s": round(self.model_s, 4),
            "pairs_per_s": round(self.pairs / self.wall_s, 2) if self.wall_s > 0 else None,
            "fraction_outside_model": round(1.0 - self.model_s / self.wall_s, 4) if self.wall_s > 0 else None,
            "query_ms_mean": round(statistics.fmean(ms), 2) if ms else None,
            "query_ms_median": round(statistics.median(ms), 2) if ms else None,
            "query_ms_p95": round(_percentile(ms, 0.95), 2) if ms else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), **asdict(self)}


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[idx]


class ModelTimer:
    """Accumulates wall time spent inside the backbone's forward (forward hooks), so that
    'time outside the model' (tokenization, collation, I/O, Python) can be reported."""

    def __init__(self, module: Any) -> None:
        self.total = 0.0
        self.calls = 0
        self._depth = 0
        self._start = 0.0
        self._handles = []
        if module is not None and hasattr(module, "register_forward_pre_hook"):
            self._handles.append(module.register_forward_pre_hook(self._pre))
            self._handles.append(module.register_forward_hook(self._post))

    def _pre(self, *_: Any) -> None:
        if self._depth == 0:
            self._start = time.perf_counter()
        self._depth += 1

    def _post(self, *_: Any) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.total += time.perf_counter() - self._start
            self.calls += 1

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def build_lists(run: Run, topics: Topics, docs: Mapping[str, Doc], top_k: int) -> list[RankingList]:
    """One :class:`RankingList` per query of ``run`` with its top-``top_k`` candidates.

    A query without text or a candidate without a document is an error naming a few of them
    (reranking a partial list would silently change the results)."""
    missing_q = [q for q in run if q not in topics]
    if missing_q:
        raise ValueError(
            f"{len(missing_q)} run queries have no topic text (e.g. {missing_q[:5]}); pass --topics with those qids"
        )
    lists = []
    missing_d: list[tuple[str, str]] = []
    for qid, ranked in run.items():
        cands = ranked[:top_k]
        row = []
        for docid, _ in cands:
            doc = docs.get(docid)
            if doc is None:
                missing_d.append((qid, docid))
            else:
                row.append(doc)
        if row:
            lists.append(RankingList(qid=qid, query=topics[qid], docs=row, labels=[0.0] * len(row)))
    if missing_d:
        raise ValueError(
            f"{len(missing_d)} run documents are not in the corpus/index (e.g. query {missing_d[0][0]!r} "
            f"document {missing_d[0][1]!r}); the run and the corpus do not match"
        )
    return lists


def _shard(items: Sequence[Any], index: int, count: int) -> list[Any]:
    """Contiguous shard ``index`` of ``count`` (sizes differ by at most one)."""
    n = len(items)
    start = index * n // count
    stop = (index + 1) * n // count
    return list(items[start:stop])


def _rerank_local(
    ranker: Any,
    lists: Sequence[RankingList],
    batch_size: int,
    progress: bool,
    desc: str,
    queries_per_chunk: int = QUERIES_PER_CHUNK,
) -> tuple[list[tuple[str, list[tuple[str, float]], float]], float, int]:
    """Score lists a chunk of queries at a time: ``[(qid, ranked, ms)]``, model seconds, pairs.

    One ``score_lists`` call per chunk lets the ranker batch across queries (pointwise families
    sort all pairs of the chunk by length; FIRST batches the windows of every query at the same
    sliding position). A query's latency is its pair-count share of the chunk's wall time."""
    from tqdm.auto import tqdm

    timer = ModelTimer(getattr(ranker, "backbone", None))
    out = []
    pairs = 0
    step = max(1, int(queries_per_chunk))
    try:
        with tqdm(total=len(lists), desc=desc, unit="query", disable=not progress) as bar:
            for start in range(0, len(lists), step):
                chunk = list(lists[start : start + step])
                t0 = time.perf_counter()
                scores = ranker.score_lists(chunk, batch_size=batch_size)
                chunk_ms = (time.perf_counter() - t0) * 1000.0
                if len(scores) != len(chunk):
                    raise RuntimeError(f"ranker returned scores for {len(scores)} lists, expected {len(chunk)}")
                chunk_pairs = sum(len(lst.docs) for lst in chunk)
                for lst, row in zip(chunk, scores):
                    if len(row) != len(lst.docs):
                        raise RuntimeError(f"ranker returned {len(row)} scores for {len(lst.docs)} documents")
                    order = sorted(range(len(row)), key=lambda i: -float(row[i]))  # stable: ties keep input order
                    ms = chunk_ms * len(lst.docs) / chunk_pairs if chunk_pairs else 0.0
                    out.append((lst.qid, [(lst.docs[i].docid, float(row[i])) for i in order], ms))
                pairs += chunk_pairs
                bar.update(len(chunk))
    finally:
        timer.close()
    return out, timer.total, pairs


def rerank_lists(
    ranker: Any,
    lists: Sequence[RankingList],
    batch_size: int = 32,
    progress: bool = True,
    desc: str = "rerank",
    queries_per_chunk: int = QUERIES_PER_CHUNK,
) -> tuple[Run, LatencyStats]:
    """Rerank ``lists``; on every process returns the full run (order of ``lists``) and stats.

    With one process this is a plain loop; under ``accelerate launch`` each process scores a
    contiguous shard and the shards are gathered (``accelerate.utils.gather_object``)."""
    state = _partial_state()
    nproc = state.num_processes if state is not None else 1
    if nproc > 1 and hasattr(ranker, "to"):
        ranker.to(state.device)
    t0 = time.perf_counter()
    mine = _shard(lists, state.process_index, nproc) if nproc > 1 else list(lists)
    results, model_s, pairs = _rerank_local(
        ranker, mine, batch_size, progress and (state is None or state.is_local_main_process), desc, queries_per_chunk
    )
    if nproc > 1:
        from accelerate.utils import gather_object  # several processes only (accelerate launch)

        gathered = gather_object([(results, model_s, pairs)])
        results = [r for part in gathered for r in part[0]]
        model_s = sum(part[1] for part in gathered) / nproc  # mean per process: they run in parallel
        pairs = sum(part[2] for part in gathered)
    wall = time.perf_counter() - t0
    by_qid: dict[str, tuple[list[tuple[str, float]], float]] = {}
    for qid, ranked, ms in results:
        by_qid.setdefault(qid, (ranked, ms))  # a query gathered twice keeps one copy
    missing = [lst.qid for lst in lists if lst.qid not in by_qid]
    if missing:
        raise RuntimeError(f"{len(missing)} queries were lost while gathering (e.g. {missing[:3]})")
    run: Run = {lst.qid: by_qid[lst.qid][0] for lst in lists}
    stats = LatencyStats(
        per_query_ms={lst.qid: round(by_qid[lst.qid][1], 3) for lst in lists},
        pairs=sum(len(lst.docs) for lst in lists) if nproc > 1 else pairs,
        wall_s=wall,
        model_s=min(model_s, wall),
        num_processes=nproc,
        queries_per_chunk=max(1, int(queries_per_chunk)),
    )
    return run, stats


def fuse_with_first_stage(
    reranked: Run, first_stage: Run, top_k: int, method: str, weight: float | None = None, tail: bool = True
) -> Run:
    """The reranked top-``top_k`` fused with the first stage's top-``top_k`` (the same documents;
    :func:`llmrank.fusion.fuse`), then the first stage's remaining hits below (``tail``)."""
    fused = fuse(reranked, truncate(first_stage, top_k), method, weight=weight)
    return merge_with_tail(fused, first_stage, top_k) if tail else fused


def merge_with_tail(reranked: Run, first_stage: Run, top_k: int) -> Run:
    """Reranked top-``top_k`` followed by the first stage's remaining hits, every score below
    the reranked block (so recall@1000 of a top-100 rerank stays that of the first stage)."""
    out: Run = {}
    for qid, ranked in first_stage.items():
        head = reranked.get(qid)
        if head is None:
            out[qid] = list(ranked)
            continue
        tail = [(d, s) for d, s in ranked[top_k:]]
        if not tail:
            out[qid] = list(head)
            continue
        floor = min(s for _, s in head)
        # place the tail strictly below the head, keeping its own order
        out[qid] = list(head) + [(d, floor - 1.0 - i) for i, (d, _) in enumerate(tail)]
    return out


def _partial_state() -> Any:
    """``accelerate.PartialState`` when running under a distributed launcher, else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    # accelerate's process state is set up only under a distributed launcher
    import torch
    from accelerate import PartialState

    # without GPUs, `accelerate launch --multi_gpu --num_processes N` gives N gloo CPU processes
    return PartialState(cpu=not torch.cuda.is_available())


def is_main_process() -> bool:
    state = _partial_state()
    return state is None or state.is_main_process


def wait_for_everyone() -> None:
    state = _partial_state()
    if state is not None:
        state.wait_for_everyone()
