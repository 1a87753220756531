"""Forward+backward time and peak memory of llmrank.losses vs Rax (jax.jit(value_and_grad)), same inputs, CPU.

    JAX_PLATFORMS=cpu python bench/losses.py [--quick] [--batch 32] [--sizes 8 20 100 1000]

Inputs: ``[batch, n]`` float32 scores ~ N(0, 1), graded labels 0-3, 90 % of the items valid (same arrays
for torch and Rax, seeded by ``n``).

Time: loss + gradient w.r.t. the scores (torch: ``backward``; Rax: a ``jax.jit``-compiled
``value_and_grad``, compiled and warmed up before timing, ``block_until_ready``).  Per-call wall times,
at least ``--reps`` calls and ``--min-time`` seconds per side, in up to 10 alternating blocks
(torch × k, Rax × k, ...): each block runs warm, back to back, and load changes from other processes hit
both sides alike.  The table gives medians and the ratio of the minima (less sensitive to load).
torch runs with ``--threads`` (default 1) threads; XLA keeps its defaults (its loss kernels ran
single-threaded here: CPU time ≤ wall time at n = 1000).

Peak memory: every (loss, n, side) runs in a fresh interpreter (``--memory-case``) so that nothing
from other cases (allocator caches, the parent's heap) is counted.  It builds the inputs, warms up
(torch: one forward+backward of the same loss on a ``[2, 4]`` batch, so the autograd engine and kernels
are initialised; Rax: the jit compile at the real shapes plus a small warm-up call), returns freed heap
memory to the OS (``malloc_trim``), resets the peak resident set size (``echo 5 > /proc/self/clear_refs``),
runs one forward+backward and reports ``VmHWM − VmRSS_before`` from ``/proc/self/status``: the growth of
the process's peak RSS during the step, i.e. every temporary really touched, inputs excluded.  We read
VmHWM rather than ``getrusage(RUSAGE_SELF).ru_maxrss``: ru_maxrss is the same high-water mark but on
Linux it starts at the *parent's* peak (it is carried over fork+exec) and cannot be reset after the XLA
compile, so it can hide the step entirely; where ``/proc`` is missing we fall back to it (no reset).

Results go to ``bench/results/losses.json`` (written to a temp file, then renamed) and a markdown table
to stdout.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import gc
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# name: (llmrank.losses function, its kwargs, rax builder).  Strings, so that a Rax memory case does
# not need torch.
CASES: dict[str, tuple[str, dict[str, Any], Callable[[Any], Callable[..., Any]]]] = {
    "pointwise_sigmoid": ("pointwise_sigmoid_loss", {}, lambda rax: rax.pointwise_sigmoid_loss),
    "pointwise_mse": ("pointwise_mse_loss", {}, lambda rax: rax.pointwise_mse_loss),
    "ranknet": ("pairwise_logistic_loss", {}, lambda rax: rax.pairwise_logistic_loss),
    "pairwise_hinge": ("pairwise_hinge_loss", {}, lambda rax: rax.pairwise_hinge_loss),
    "lambdarank": (
        "pairwise_logistic_loss",
        {"lambdaweight": "dcg"},
        lambda rax: functools.partial(rax.pairwise_logistic_loss, lambdaweight_fn=rax.dcg_lambdaweight),
    ),
    "lambdaloss": (
        "pairwise_logistic_loss",
        {"lambdaweight": "dcg2"},
        lambda rax: functools.partial(rax.pairwise_logistic_loss, lambdaweight_fn=rax.dcg2_lambdaweight),
    ),
    "softmax": ("softmax_loss", {}, lambda rax: rax.softmax_loss),
    "poly1": ("poly1_softmax_loss", {}, lambda rax: rax.poly1_softmax_loss),
    "listmle": ("listmle_loss", {}, lambda rax: rax.listmle_loss),
    "approx_ndcg": ("approx_ndcg_loss", {}, lambda rax: rax.approx_t12n(rax.ndcg_metric)),
    "approx_mrr": ("approx_mrr_loss", {}, lambda rax: rax.approx_t12n(rax.mrr_metric)),
    "lipo_lambda": (
        "lipo_lambda_loss",
        {},
        lambda rax: functools.partial(rax.pairwise_logistic_loss, lambdaweight_fn=rax.dcg_lambdaweight),
    ),
}
PAIRWISE = ("ranknet", "pairwise_hinge", "lambdarank", "lambdaloss", "lipo_lambda")
MAX_RATIO_AT_100 = 3.0  # target (a): no loss slower than 3× Rax at n = 100
MAX_PAIRWISE_MB_AT_1000 = 1024.0  # target (b): pairwise losses at n = 1000 under 1 GB peak


def _inputs(batch: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    scores = rng.normal(size=(batch, n)).astype(np.float32)
    labels = rng.integers(0, 4, size=(batch, n)).astype(np.float32)
    mask = rng.random((batch, n)) < 0.9
    return scores, labels, mask


def _import_jax() -> tuple[Any, Any]:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import rax

    return jax, rax


def _torch_step(name: str, scores: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> Callable[[], None]:
    import torch

    from llmrank import losses as L

    fn_name, kw, _ = CASES[name]
    fn = getattr(L, fn_name)
    s = torch.from_numpy(scores.copy()).requires_grad_(True)
    y, m = torch.from_numpy(labels), torch.from_numpy(mask)

    def step() -> None:
        s.grad = None
        fn(s, y, mask=m, **kw).backward()

    return step


def _rax_step(name: str, scores: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> Callable[[], None]:
    jax, rax = _import_jax()
    rfn = CASES[name][2](rax)
    args = tuple(jax.numpy.asarray(a) for a in (scores, labels, mask))
    vg = jax.jit(jax.value_and_grad(lambda s, y, m: rfn(s, y, where=m)))
    compiled = vg.lower(*args).compile()

    def step() -> None:
        jax.block_until_ready(compiled(*args))

    return step


# ----------------------------------------------------------------------------------------- memory
def _rss_kib() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process in KiB."""
    try:
        with open("/proc/self/status") as fh:
            fields = dict(line.split(":", 1) for line in fh if line.startswith(("VmRSS", "VmHWM")))
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return peak, peak


def _reset_peak() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed heap pages back: they would hide reuse
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # VmHWM := VmRSS (Linux >= 4.0)
    except OSError:
        pass


def _memory_case(name: str, n: int, batch: int, side: str, threads: int) -> float:
    """Growth of the peak RSS (MB) during one forward+backward; run in a fresh interpreter."""
    scores, labels, mask = _inputs(batch, n)
    if side == "torch":
        import torch

        torch.set_num_threads(threads)
        _torch_step(name, *(a[:2, :4] for a in (scores, labels, mask)))()  # warm-up, tiny
        step = _torch_step(name, scores, labels, mask)
    else:
        small = _rax_step(name, *(a[:2, :4] for a in (scores, labels, mask)))
        small()  # runtime warm-up
        step = _rax_step(name, scores, labels, mask)  # compiled at the real shapes, not run yet
    _reset_peak()
    before, _ = _rss_kib()
    step()
    _, peak = _rss_kib()
    return max(0, peak - before) / 1024


def _measure_memory(name: str, n: int, batch: int, side: str, threads: int) -> float | None:
    cmd = [sys.executable, __file__, "--memory-case", name, str(n), side, "--batch", str(batch)]
    cmd += ["--threads", str(threads)]
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=True)
        return float(json.loads(proc.stdout.strip().splitlines()[-1])["peak_mb"])
    except (subprocess.SubprocessError, ValueError, KeyError, IndexError) as exc:
        err = getattr(exc, "stderr", "") or ""
        print(f"  memory case {name} n={n} {side} failed: {exc} {err[-500:]}", file=sys.stderr)
        return None


# ----------------------------------------------------------------------------------------- timing
def _interleaved_times(
    steps: dict[str, Callable[[], None]], reps: int, min_time: float, max_reps: int, rounds: int = 10
) -> dict[str, list[float]]:
    """Per-call wall times of each step: at least ``reps`` calls and ``min_time`` s per step (at most
    ``max_reps``), in up to ``rounds`` alternating blocks (torch × k, Rax × k, torch × k, ...).  Within a
    block a step runs back to back, warm as in a training loop (alternating every call would measure
    cold caches and sleeping XLA threads); the alternation makes load changes hit both sides alike."""
    est = {}
    for key, step in steps.items():
        step()  # warm-up
        t0 = time.perf_counter()
        step()
        est[key] = time.perf_counter() - t0
    n_reps = max(reps, min(max_reps, math.ceil(min_time / max(1e-9, max(est.values())))))
    n_rounds = min(rounds, n_reps)
    block = math.ceil(n_reps / n_rounds)
    times: dict[str, list[float]] = {key: [] for key in steps}
    for _ in range(n_rounds):
        for key, step in steps.items():
            for _ in range(block):
                t0 = time.perf_counter()
                step()
                times[key].append(time.perf_counter() - t0)
    return times


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="smoke test: sizes 8 and 100, 3 reps, 0.05 s per case, memory at 100"
    )
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 20, 100, 1000])
    ap.add_argument("--losses", nargs="+", choices=sorted(CASES), default=list(CASES))
    ap.add_argument("--reps", type=int, default=5, help="minimum timed repetitions per side")
    ap.add_argument("--min-time", type=float, default=0.5, help="minimum timed seconds per side and case")
    ap.add_argument("--max-reps", type=int, default=300)
    ap.add_argument("--no-rax", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--memory-sizes", type=int, nargs="+", help="list sizes with a memory case (default: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "losses.json"))
    ap.add_argument("--memory-case", nargs=3, metavar=("LOSS", "N", "SIDE"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.memory_case:
        name, n, side = args.memory_case
        print(json.dumps({"peak_mb": _memory_case(name, int(n), args.batch, side, args.threads)}))
        return

    import torch

    sizes, reps, min_time = ([8, 100], 3, 0.05) if args.quick else (args.sizes, args.reps, args.min_time)
    memory_sizes = args.memory_sizes or (sizes[-1:] if args.quick else sizes)
    torch.set_num_threads(args.threads)
    jax = rax = None
    if not args.no_rax:
        try:
            jax, rax = _import_jax()
        except ImportError:
            print("rax/jax not installed: torch only")

    t_start = time.perf_counter()
    rows = []
    for n in sizes:
        arrays = _inputs(args.batch, n)
        for name in args.losses:
            steps = {"torch": _torch_step(name, *arrays)}
            if rax is not None:
                steps["rax"] = _rax_step(name, *arrays)
            times = _interleaved_times(steps, reps, min_time, args.max_reps)
            row: dict[str, Any] = {"loss": name, "batch": args.batch, "list_size": n, "reps": len(times["torch"])}
            for side, ts in times.items():
                row[f"{side}_s"] = statistics.median(ts)
                row[f"{side}_min_s"] = min(ts)
            if "rax" in times:
                row["ratio"] = row["torch_s"] / row["rax_s"]
                row["ratio_min"] = row["torch_min_s"] / row["rax_min_s"]
            if not args.no_memory and n in memory_sizes:
                for side in times:
                    row[f"{side}_peak_mb"] = _measure_memory(name, n, args.batch, side, args.threads)
            del steps
            rows.append(row)
            print(
                f"  {name:18s} n={n:5d} torch {row['torch_s'] * 1e3:9.3f} ms"
                f"  peak {_fmt(row.get('torch_peak_mb'), '8.1f')} MB"
                + (
                    f"  rax {row['rax_s'] * 1e3:9.3f} ms  peak {_fmt(row.get('rax_peak_mb'), '8.1f')} MB"
                    f"  x{row['ratio']:.2f} (min x{row['ratio_min']:.2f})"
                    if "rax_s" in row
                    else ""
                ),
                flush=True,
            )

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "min_reps": reps,
        "memory_sizes": [] if args.no_memory else memory_sizes,
        "min_time_s": min_time,
        "time": "median (and min) per-call wall time of forward+backward, torch and Rax in alternating blocks",
        "memory": "growth of VmHWM over VmRSS during one forward+backward, fresh process per case, "
        "after warm-up/compile, malloc_trim and a peak reset (/proc/self/clear_refs 5)",
        "rax": getattr(rax, "__version__", None),
        "jax": getattr(jax, "__version__", None),
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "wall_s": time.perf_counter() - t_start,
    }
    with tempfile.NamedTemporaryFile("w", dir=out.parent, delete=False, suffix=".tmp") as fh:
        json.dump({"meta": meta, "results": rows}, fh, indent=2)
    os.replace(fh.name, out)

    print(
        "\n| loss | n | torch ms | rax ms | torch/rax | torch/rax (min) | torch peak MB | rax peak MB |"
        "\n|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    for r in rows:
        print(
            f"| {r['loss']} | {r['list_size']} | {r['torch_s'] * 1e3:.3f} | {_fmt(_ms(r.get('rax_s')), '.3f')} "
            f"| {_fmt(r.get('ratio'), '.2f')} | {_fmt(r.get('ratio_min'), '.2f')} "
            f"| {_fmt(r.get('torch_peak_mb'), '.1f')} | {_fmt(r.get('rax_peak_mb'), '.1f')} |"
        )
    slow = [
        f"{r['loss']} x{r['ratio']:.2f}"
        for r in rows
        if r["list_size"] == 100 and r.get("ratio", 0) > MAX_RATIO_AT_100
    ]
    big = [
        f"{r['loss']} {r['torch_peak_mb']:.0f} MB"
        for r in rows
        if r["loss"] in PAIRWISE
        and r["list_size"] == 1000
        and (r.get("torch_peak_mb") or 0) >= MAX_PAIRWISE_MB_AT_1000
    ]
    print(f"\nwall time {meta['wall_s']:.0f} s, load average {meta['load_avg']}")
    if any(r["list_size"] == 100 and "ratio" in r for r in rows):
        print(f"(a) <= {MAX_RATIO_AT_100:g}x Rax at n=100: " + ("holds" if not slow else "FAILS: " + ", ".join(slow)))
    if any(r["list_size"] == 1000 and r["loss"] in PAIRWISE and "torch_peak_mb" in r for r in rows):
        print(
            f"(b) pairwise n=1000 < {MAX_PAIRWISE_MB_AT_1000:g} MB: "
            + ("holds" if not big else "FAILS: " + ", ".join(big))
        )


if __name__ == "__main__":
    main()
