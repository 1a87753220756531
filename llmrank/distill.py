"""BAR: Born-Again neural Rankers (Qin et al., "Born Again Neural Rankers", arXiv 2109.15285).

A student with exactly the teacher's architecture (and the same initialisation) is trained on

    (1 - alpha) * objective(y, s) + alpha * softmax_CE(g(t), s),    g(t) = ReLU(a*t + b)

where ``t`` are a prior checkpoint's scores on the training lists (data: they carry no gradient).
The paper's findings that shaped the defaults here: listwise (softmax-CE) distillation is
essential -- pointwise MSE score distillation hurts; the affine ``ReLU(a*t + b)`` teacher transform
beats ``softmax(t / T)``; ``alpha = 0.5, a = 1, b = 0`` works best; ``alpha = 1`` (teacher scores
alone) ends up worse than the teacher. RankTower (a later study of born-again / self
distillation for rankers) found the same: a born-again student of the same size can beat its
teacher only when the ground-truth term is kept (0 < alpha < 1) and the distillation is listwise.

Called by :mod:`llmrank.train` (this module never imports it: data flows down):

* :func:`distillation_terms` -- the recipe's objective with the distillation term mixed in;
* :func:`attach_teacher_scores` -- the training lists with ``teacher_scores`` filled in.

The ``distill.generations: k`` loop trains one model after another, so it lives beside
``run_training``: :func:`llmrank.train.run_generations`.

Decisions (documented, tested):

* ``alpha = 0`` returns the recipe's terms unchanged (same objects' values, no distillation term),
  so training is bit-for-bit the run without ``distill:``; ``alpha = 1`` drops the label terms.
* A single ``teacher`` (or a ``teacher_scores`` file) supplies RAW scores; the loss applies the
  transform per sampled group (for ``affine_relu`` the group's ReLU(a*t+b) are normalised to a
  distribution, see :func:`llmrank.losses.bar_distillation_loss`).
* An ensemble (``teacher: [ckpt1, ckpt2, ...]``) stores the mean of the TRANSFORMED scores,
  ``mean_k g(t_k)`` (``affine_relu``: per document ``ReLU(a*t_k + b)``; ``softmax``: each
  teacher's softmax(t_k / T) over the whole list, then averaged -- a mixture distribution; ``none``:
  the mean raw score), and the loss then gets ``affine_relu`` with ``a = 1, b = 0``: the identity on
  these non-negative targets followed by the per-group normalisation. (For ``loss: mse`` the
  same ``a = 1, b = 0`` ReLU, which again is the identity.) With ``transform: none`` the ensemble
  mean may be negative, so its loss transform stays ``none``.
* Scores of a teacher checkpoint are computed once and cached as canonical JSONL (itself a valid
  ``teacher_scores:`` file) under ``$LLMRANK_CACHE/teacher_scores/`` (default
  ``~/.cache/llmrank/teacher_scores/``), named by a hash of the teacher (resolved path + size and
  mtime of every file in the checkpoint) and of the data (qids, query texts, docids, doc texts).
  Retraining the teacher or changing the data therefore misses the cache. In multi-process runs
  the main process scores first, the others then read the cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from llmrank.config import DistillArgs, RecipeError
from llmrank.data.readers import read_lists_jsonl, write_lists_jsonl
from llmrank.data.record import RankingList
from llmrank.io_utils import atomic_write_json, cache_root
from llmrank.loading import device_ranker
from llmrank.losses.distillation import TEACHER_TRANSFORMS, teacher_transform
from llmrank.runs import read_trec_run

logger = logging.getLogger("llmrank.distill")

__all__ = [
    "attach_teacher_scores",
    "check_distill",
    "distillation_terms",
    "lists_hash",
    "match_teacher_scores",
    "run_teacher_scores",
    "score_lists_to_file",
    "teacher_cache_path",
    "teacher_fingerprint",
    "transform_settings",
]

_TRANSFORMS = TEACHER_TRANSFORMS
_TRANSFORM_KEYS = {"name", "a", "b", "temperature"}
_LOSSES = {"listwise": "bar_distillation", "mse": "mse_distillation"}


# ----------------------------------------------------------------------------- objective
def transform_settings(d: DistillArgs) -> dict[str, Any]:
    """The validated transform block with defaults filled in."""
    raw = dict(d.transform or {})
    unknown = set(raw) - _TRANSFORM_KEYS
    if unknown:
        raise RecipeError(f"distill.transform: unknown key(s) {sorted(unknown)}; valid: {sorted(_TRANSFORM_KEYS)}")
    name = raw.get("name", "affine_relu")
    if name not in _TRANSFORMS:
        raise RecipeError(f"distill.transform.name must be one of {_TRANSFORMS}, not {name!r}")
    out = {
        "name": name,
        "a": float(raw.get("a", 1.0)),
        "b": float(raw.get("b", 0.0)),
        "temperature": float(raw.get("temperature", 1.0)),
    }
    if out["temperature"] <= 0:
        raise RecipeError(f"distill.transform.temperature must be > 0, not {out['temperature']}")
    return out


def check_distill(d: DistillArgs) -> None:
    """A one-line RecipeError for a bad ``distill:`` block (alpha, loss, generations, transform)."""
    if not 0.0 <= float(d.alpha) <= 1.0:
        raise RecipeError(f"distill.alpha must be in [0, 1], not {d.alpha}")
    if d.loss not in _LOSSES:
        raise RecipeError(f"distill.loss must be 'listwise' (BAR) or 'mse' (pointwise ablation), not {d.loss!r}")
    if int(d.generations) < 1:
        raise RecipeError(f"distill.generations must be >= 1, not {d.generations}")
    transform_settings(d)


def _is_ensemble(d: DistillArgs) -> bool:
    return isinstance(d.teacher, list | tuple) and len(d.teacher) > 1


def distillation_terms(terms: list[dict[str, Any]], d: DistillArgs) -> list[dict[str, Any]]:
    """``(1-alpha)`` x the recipe's terms plus ``alpha`` x the distillation term.

    ``alpha = 0``: the terms come back unchanged (no distillation term), so the run is bit for bit
    the plain one. ``alpha = 1``: only the distillation term. ``loss: listwise`` adds
    ``bar_distillation`` (BAR), ``loss: mse`` adds ``mse_distillation`` (the pointwise ablation).
    """
    check_distill(d)
    alpha = float(d.alpha)
    if alpha == 0.0:
        return [dict(t) for t in terms]
    out: list[dict[str, Any]] = []
    if alpha < 1.0:
        for term in terms:
            scaled = dict(term)
            scaled["weight"] = (1.0 - alpha) * float(term.get("weight", 1.0))
            out.append(scaled)
    tf = transform_settings(d)
    if _is_ensemble(d) and tf["name"] != "none":
        # the ensemble's transformed mean is already a non-negative target (see the module docstring)
        tf = {"name": "affine_relu", "a": 1.0, "b": 0.0, "temperature": 1.0}
    out.append(
        {
            "name": _LOSSES[d.loss],
            "weight": alpha,
            "transform": tf["name"],
            "a": tf["a"],
            "b": tf["b"],
            "temperature": tf["temperature"],
        }
    )
    return out


# ----------------------------------------------------------------------------- teacher scores
def lists_hash(lists: Sequence[RankingList]) -> str:
    """Hash of what a teacher sees: qids, query texts, docids and document texts (not labels)."""
    h = hashlib.sha1()
    for rl in lists:
        h.update(f"{rl.qid}\x1e{rl.query}\x1e".encode())
        for doc in rl.docs:
            h.update(f"{doc.docid}\x1f{doc.title or ''}\x1f{doc.text}\x1d".encode())
    return h.hexdigest()[:16]


def teacher_fingerprint(teacher: str) -> str:
    path = Path(teacher)
    if not path.exists():
        name = str(teacher)
        if name.startswith((".", "/", "~")) or name.count("/") != 1:
            raise FileNotFoundError(f"teacher checkpoint {name!r} does not exist")
        return "hub-" + hashlib.sha1(name.encode()).hexdigest()[:16]  # a Hub id: load_ranker downloads it
    if not (path / "llmrank_config.json").exists():
        raise FileNotFoundError(
            f"teacher {teacher!r} is not an llmrank checkpoint (no llmrank_config.json); "
            "train one first, or give distill.teacher_scores"
        )
    h = hashlib.sha1(str(path.resolve()).encode())
    for f in sorted(p for p in path.rglob("*") if p.is_file() and "checkpoint-" not in str(p.relative_to(path))):
        st = f.stat()
        h.update(f"{f.relative_to(path)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """``$LLMRANK_CACHE/teacher_scores`` (default ``~/.cache/llmrank/teacher_scores``)."""
    return cache_root() / "teacher_scores"


def teacher_cache_path(teacher: str, lists: Sequence[RankingList]) -> Path:
    """Where the teacher's scores of ``lists`` are cached (see the module docstring)."""
    return cache_dir() / f"{Path(str(teacher)).name or 'teacher'}-{teacher_fingerprint(teacher)}-{lists_hash(lists)}.jsonl"


def match_teacher_scores(lists: Sequence[RankingList], scored: Sequence[RankingList], source: str) -> list[RankingList]:
    """``lists`` with ``teacher_scores`` taken from ``scored`` by (qid, docid).

    Raises ``ValueError`` naming the missing qids / (qid, docid) pairs when any is absent."""
    table: dict[str, dict[str, float]] = {}
    for rl in scored:
        if rl.teacher_scores is None:
            continue
        table.setdefault(rl.qid, {}).update(zip((d.docid for d in rl.docs), rl.teacher_scores))
    out: list[RankingList] = []
    missing_q: list[str] = []
    missing_d: list[tuple[str, str]] = []
    for rl in lists:
        scores = table.get(rl.qid)
        if scores is None:
            missing_q.append(rl.qid)
            continue
        row = []
        for doc in rl.docs:
            if doc.docid not in scores:
                missing_d.append((rl.qid, doc.docid))
                row.append(math.nan)
            else:
                row.append(float(scores[doc.docid]))
        out.append(dataclasses.replace(rl, teacher_scores=row, meta=dict(rl.meta)))
    if missing_q or missing_d:
        parts = []
        if missing_q:
            parts.append(f"{len(missing_q)} training list(s) have no scored list (first qids: {missing_q[:5]})")
        if missing_d:
            parts.append(f"{len(missing_d)} document(s) have no teacher score (first qid/docid: {missing_d[:5]})")
        raise ValueError(
            f"teacher scores {source}: " + "; ".join(parts) + ". Score the same training data with "
            "`llmrank score --model TEACHER --data ... --out ...` (lists are matched by qid and docid)"
        )
    return out


def run_teacher_scores(lists: Sequence[RankingList], run_path: str | os.PathLike) -> list[RankingList]:
    """``lists`` with ``teacher_scores`` read from a TREC run (any first-stage or reranker run:
    SPLADE, a cross-encoder, ``llmrank rerank`` output), matched by qid and docid.

    Raises:
        FileNotFoundError: the run file does not exist.
        ValueError: a malformed run (file:line), or a training (qid, docid) the run does not score
            (the first missing pairs are named).
    """
    path = Path(run_path)
    if not path.exists():
        raise FileNotFoundError(f"distill.teacher_run {str(run_path)!r} does not exist (give a TREC run file)")
    run = read_trec_run(path)
    table = {qid: dict(hits) for qid, hits in run.items()}
    out: list[RankingList] = []
    missing: list[tuple[str, str]] = []
    for rl in lists:
        scores = table.get(rl.qid, {})
        row = [scores.get(doc.docid) for doc in rl.docs]
        missing += [(rl.qid, doc.docid) for doc, s in zip(rl.docs, row) if s is None]
        out.append(dataclasses.replace(rl, teacher_scores=[math.nan if s is None else float(s) for s in row],
                                       meta=dict(rl.meta)))  # fmt: skip
    if missing:
        raise ValueError(
            f"distill.teacher_run {path}: {len(missing)} training (qid, docid) pair(s) have no score in the run "
            f"(first: {', '.join(f'{q} {d}' for q, d in missing[:5])}); rerank the training lists' documents with "
            "the teacher, or train on lists taken from that run"
        )
    return out


def score_lists_to_file(
    ranker: Any,
    lists: Sequence[RankingList],
    out: str | os.PathLike,
    batch_size: int = 64,
    chunk_lists: int | None = None,
    meta: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[RankingList]:
    """Score every document of ``lists`` with ``ranker`` and write them with ``teacher_scores`` to
    ``out`` (canonical JSONL, input order), resumably.

    Finished lists are appended (flushed + fsynced) to ``<out>.partial`` every ``chunk_lists``
    lists; a restart skips the qids already there (a half-written last line is ignored) and ends
    with an atomic rename. ``<out>.partial.json`` records ``meta`` (model, data hash): a partial
    file made from other inputs is an error rather than silently mixed in."""
    out = Path(out)
    lists = list(lists)
    counts: dict[str, int] = {}
    for rl in lists:
        counts[rl.qid] = counts.get(rl.qid, 0) + 1
    dups = [q for q, c in counts.items() if c > 1]
    if dups:
        raise ValueError(f"qids must be unique to score resumably; duplicated: {sorted(set(dups))[:5]}")
    partial = out.with_name(out.name + ".partial")
    meta_path = out.with_name(out.name + ".partial.json")
    meta = {**(meta or {}), "data_hash": lists_hash(lists)}
    done: dict[str, RankingList] = {}
    if partial.exists():
        if meta_path.exists():
            old = json.loads(meta_path.read_text())
            if old != meta:
                raise ValueError(
                    f"{partial} was written for other inputs ({old}); delete it or rerun with the same model and data"
                )
        good_bytes = 0
        with partial.open("rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # interrupted mid-write
                try:
                    rl = RankingList.from_dict(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    break
                done[rl.qid] = rl
                good_bytes += len(line)
        with partial.open("r+b") as fh:
            fh.truncate(good_bytes)
        logger.info("resuming: %d of %d lists already scored in %s", len(done), len(lists), partial)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(meta_path, meta)
    todo = [rl for rl in lists if rl.qid not in done]
    chunk = max(1, chunk_lists or batch_size)
    with partial.open("a", encoding="utf-8") as fh:
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            scores = ranker.score_lists(part, batch_size=batch_size)
            for rl, row in zip(part, scores):
                scored = dataclasses.replace(rl, teacher_scores=[float(x) for x in row], meta=dict(rl.meta))
                done[rl.qid] = scored
                fh.write(scored.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            if progress is not None:
                progress(len(done), len(lists))
    result = [done[rl.qid] for rl in lists]
    write_lists_jsonl(result, out)
    partial.unlink(missing_ok=True)
    meta_path.unlink(missing_ok=True)
    return result


def _teacher_raw_scores(teacher: str, lists: Sequence[RankingList], batch_size: int) -> list[list[float]]:
    """One teacher's raw scores of ``lists``, from the cache or scored now (and cached)."""
    path = teacher_cache_path(teacher, lists)
    if path.exists():
        logger.info("teacher %s: cached scores %s", teacher, path)
        return [rl.teacher_scores or [] for rl in match_teacher_scores(lists, read_lists_jsonl(path), str(path))]
    logger.info("teacher %s: scoring %d lists (cache: %s)", teacher, len(lists), path)
    ranker = device_ranker(teacher)
    scored = score_lists_to_file(ranker, lists, path, batch_size=batch_size, meta={"model": str(teacher)})
    del ranker
    return [rl.teacher_scores or [] for rl in scored]


def _apply_transform(rows: list[list[float]], tf: dict[str, Any]) -> list[list[float]]:
    """Each row's teacher transform, per list (affine_relu not normalised: the loss normalises per group)."""
    kw = {"a": tf["a"], "b": tf["b"], "temperature": tf["temperature"]}
    out = []
    for row in rows:
        t = torch.tensor([row], dtype=torch.float64)
        out.append(teacher_transform(t, torch.ones_like(t, dtype=torch.bool), tf["name"], **kw)[0].tolist())
    return out


def _main_process_first() -> Any:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState  # process state exists only under a distributed launcher

        return PartialState().main_process_first()
    return contextlib.nullcontext()


def attach_teacher_scores(lists: Sequence[RankingList], d: DistillArgs) -> list[RankingList]:
    """``lists`` with ``teacher_scores`` from ``d`` (copies; the input lists are not modified).

    * ``teacher_scores: FILE`` -- canonical JSONL with ``teacher_scores`` (e.g. from ``llmrank
      score``), matched by qid and docid; any training document without a score is an error.
    * ``teacher_run: RUN`` -- the scores of a TREC run file, matched by qid and docid.
    * ``teacher: CKPT`` -- raw scores of the checkpoint (cached, see the module docstring).
    * ``teacher: [CKPT, ...]`` -- the mean of the transformed scores of every checkpoint.
    At ``alpha = 0`` nothing is attached (the lists come back as they are)."""
    check_distill(d)
    lists = list(lists)
    if float(d.alpha) == 0.0:
        return lists
    given = [k for k in ("teacher", "teacher_scores", "teacher_run") if getattr(d, k, None)]
    if len(given) > 1:
        raise RecipeError(
            f"distill: give one of teacher (checkpoint(s)), teacher_scores (a scored file) or teacher_run "
            f"(a TREC run), not {' and '.join(given)}"
        )
    if getattr(d, "teacher_run", None):
        return run_teacher_scores(lists, str(d.teacher_run))
    if d.teacher_scores:
        path = Path(d.teacher_scores)
        if not path.exists():
            raise FileNotFoundError(f"distill.teacher_scores file {d.teacher_scores!r} does not exist")
        return match_teacher_scores(lists, read_lists_jsonl(path), str(path))
    if not d.teacher:
        raise RecipeError(
            "distill: no teacher; set distill.teacher (a checkpoint or a list of them), distill.teacher_scores "
            "(a file from `llmrank score`), or distill.generations > 1 to train the teacher first"
        )
    teachers = [str(t) for t in d.teacher] if isinstance(d.teacher, list | tuple) else [str(d.teacher)]
    for t in teachers:
        teacher_fingerprint(t)  # fail fast on a missing / non-llmrank teacher before any scoring
    with _main_process_first():
        per_teacher = [_teacher_raw_scores(t, lists, int(d.batch_size)) for t in teachers]
    if len(per_teacher) == 1:
        rows = per_teacher[0]
    else:
        tf = transform_settings(d)
        transformed = [_apply_transform(rows, tf) for rows in per_teacher]
        rows = [
            [sum(vals) / len(vals) for vals in zip(*(tr[i] for tr in transformed))] for i in range(len(lists))
        ]
    return [dataclasses.replace(rl, teacher_scores=list(row), meta=dict(rl.meta)) for rl, row in zip(lists, rows)]
