"""Forward+backward time and peak memory of llmrank.losses vs Rax (jax.jit(grad)), same inputs, CPU.

    JAX_PLATFORMS=cpu python bench/losses.py [--quick] [--batch 32] [--sizes 8 20 100 1000]

Time: median wall time of ``--reps`` runs of loss + gradient w.r.t. the scores (torch: ``backward``;
Rax: a ``jax.jit``-compiled ``value_and_grad``, compiled before timing, ``block_until_ready``).
Peak memory (torch only): the torch profiler's CPU memory records (``profile_memory=True``: each
op's self allocation at its start, frees as ``[memory]`` events) are replayed in time order and the
largest running total of live bytes during the forward+backward is reported (op granularity;
inputs that exist before the call are not counted).  torch runs with ``--threads`` (default 1)
threads: the benchmark machine is shared.  Memory of the
jax side is not measured.  Results go to ``bench/results/losses.json`` (written to a temp file,
then renamed) and a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from llmrank import losses as L

CASES = {
    # name: (torch fn, torch kwargs, rax builder)
    "pointwise_sigmoid": (L.pointwise_sigmoid_loss, {}, lambda rax: rax.pointwise_sigmoid_loss),
    "pointwise_mse": (L.pointwise_mse_loss, {}, lambda rax: rax.pointwise_mse_loss),
    "ranknet": (L.pairwise_logistic_loss, {}, lambda rax: rax.pairwise_logistic_loss),
    "pairwise_hinge": (L.pairwise_hinge_loss, {}, lambda rax: rax.pairwise_hinge_loss),
    "lambdarank": (L.pairwise_logistic_loss, {"lambdaweight": "dcg"},
                   lambda rax: functools.partial(rax.pairwise_logistic_loss, lambdaweight_fn=rax.dcg_lambdaweight)),
    "lambdaloss": (L.pairwise_logistic_loss, {"lambdaweight": "dcg2"},
                   lambda rax: functools.partial(rax.pairwise_logistic_loss, lambdaweight_fn=rax.dcg2_lambdaweight)),
    "softmax": (L.softmax_loss, {}, lambda rax: rax.softmax_loss),
    "poly1": (L.poly1_softmax_loss, {}, lambda rax: rax.poly1_softmax_loss),
    "listmle": (L.listmle_loss, {}, lambda rax: rax.listmle_loss),
    "approx_ndcg": (L.approx_ndcg_loss, {}, lambda rax: rax.approx_t12n(rax.ndcg_metric)),
    "approx_mrr": (L.approx_mrr_loss, {}, lambda rax: rax.approx_t12n(rax.mrr_metric)),
    "lipo_lambda": (L.lipo_lambda_loss, {},
                    lambda rax: functools.partial(rax.pairwise_logistic_loss, lambdaweight_fn=rax.dcg_lambdaweight)),
}


def _peak_bytes(fn) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = []
    for ev in prof.events():
        # allocations attributed to each op (self, i.e. not double-counted through children) and the
        # frees the profiler reports as "[memory]" events; op-level granularity
        if ev.self_cpu_memory_usage:
            events.append((ev.time_range.start, ev.self_cpu_memory_usage))
    events.sort()
    live = peak = 0
    for _, delta in events:
        live += delta
        peak = max(peak, live)
    return peak


def _median_time(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="sizes 8 and 100, 2 reps")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 20, 100, 1000])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-rax", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "losses.json"))
    args = ap.parse_args()
    sizes, reps = ([8, 100], 2) if args.quick else (args.sizes, args.reps)
    torch.set_num_threads(args.threads)

    rax = jax = None
    if not args.no_rax:
        try:
            os.environ.setdefault("JAX_PLATFORMS", "cpu")
            import jax
            import rax
        except ImportError:
            print("rax/jax not installed: torch only")

    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        scores_np = rng.normal(size=(args.batch, n)).astype(np.float32)
        labels_np = rng.integers(0, 4, size=(args.batch, n)).astype(np.float32)
        mask_np = rng.random((args.batch, n)) < 0.9
        labels_t, mask_t = torch.from_numpy(labels_np), torch.from_numpy(mask_np)
        for name, (fn, kw, rax_build) in CASES.items():
            scores_t = torch.from_numpy(scores_np.copy()).requires_grad_(True)

            def step(fn=fn, kw=kw, scores_t=scores_t, labels_t=labels_t, mask_t=mask_t):
                scores_t.grad = None
                fn(scores_t, labels_t, mask=mask_t, **kw).backward()

            t_torch = _median_time(step, reps)
            peak = _peak_bytes(step)
            row = {"loss": name, "batch": args.batch, "list_size": n, "torch_s": t_torch, "torch_peak_mb": peak / 2**20}
            if rax is not None:
                rfn = rax_build(rax)
                vg = jax.jit(jax.value_and_grad(lambda s, y, m, rfn=rfn: rfn(s, y, where=m)))
                s_j, y_j, m_j = map(jax.numpy.asarray, (scores_np, labels_np, mask_np))

                def rstep(vg=vg, s_j=s_j, y_j=y_j, m_j=m_j):
                    jax.block_until_ready(vg(s_j, y_j, m_j))

                row["rax_s"] = _median_time(rstep, reps)
                row["ratio"] = t_torch / row["rax_s"]
            rows.append(row)
            print(f"  {name:18s} n={n:5d} torch {t_torch * 1e3:9.2f} ms  peak {peak / 2**20:8.1f} MB"
                  + (f"  rax {row['rax_s'] * 1e3:9.2f} ms  x{row['ratio']:.2f}" if "rax_s" in row else ""), flush=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "reps": reps,
            "memory": "torch profiler CPU allocation events, peak of live bytes during forward+backward",
            "rax": getattr(rax, "__version__", None), "jax": getattr(jax, "__version__", None)}
    with tempfile.NamedTemporaryFile("w", dir=out.parent, delete=False, suffix=".tmp") as fh:
        json.dump({"meta": meta, "results": rows}, fh, indent=2)
    os.replace(fh.name, out)

    print("\n| loss | n | torch ms | rax ms | torch/rax | torch peak MB |\n|---|---:|---:|---:|---:|---:|")
    for r in rows:
        rax_ms = f"{r['rax_s'] * 1e3:.2f}" if "rax_s" in r else "-"
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else "-"
        print(f"| {r['loss']} | {r['list_size']} | {r['torch_s'] * 1e3:.2f} | {rax_ms} | {ratio} | {r['torch_peak_mb']:.1f} |")


if __name__ == "__main__":
    main()
