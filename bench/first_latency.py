"""FIRST latency: single-token decoding vs generating the full permutation (Reddy et al., EMNLP 2024;
Chen, Pradeep & Lin 2024 report 21-42% lower latency for 7B models on GPUs).

Same model, same candidates, same sliding windows in one run; per-query latency (median, p90), the
ratio, and Kendall's tau between the two final orderings. Default: a tiny random Llama on CPU (a
random model rarely emits EOS, so generation runs its full ~4n-token budget, like a real model does).
``--config`` takes a JSON LlamaConfig override for a larger Llama-shaped model on a GPU.

    python bench/first_latency.py                       # tiny, CPU
    python bench/first_latency.py --config '{"hidden_size": 4096, "num_hidden_layers": 32, ...}' --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_model(folder: Path, config_override: dict) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.tiny_models import make_tiny_llama

    make_tiny_llama(folder)
    if config_override:
        config = LlamaConfig.from_pretrained(folder)
        for k, v in config_override.items():
            setattr(config, k, v)
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> dict:
    from scipy.stats import kendalltau

    from llmrank.data.record import Doc, RankingList
    from llmrank.rankers.base import RankerSettings
    from llmrank.rankers.first import FirstRanker

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=4)
    ap.add_argument("--candidates", type=int, default=30)
    ap.add_argument("--window-size", type=int, default=20)
    ap.add_argument("--stride", type=int, default=10)
    ap.add_argument("--words", type=int, default=20, help="words per passage")
    ap.add_argument("--config", default="{}", help="JSON LlamaConfig overrides (larger Llama-shaped model)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "first_latency.json"))
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    vocab = "alpha beta gamma delta river stone cloud paper green table music light horse glass storm bread".split()
    lists = []
    for q in range(args.queries):
        docs = [Doc(f"q{q}d{i}", " ".join(vocab[(q + i * 7 + k) % len(vocab)] for k in range(args.words)))
                for i in range(args.candidates)]
        lists.append(RankingList(f"q{q}", f"query {q} about {vocab[q % len(vocab)]}", docs, [0.0] * args.candidates))
    with tempfile.TemporaryDirectory() as tmp:
        path = build_model(Path(tmp) / "model", json.loads(args.config))
        ranker = FirstRanker.build(RankerSettings(
            family="first", model_name_or_path=str(path), max_length=8192, dtype=args.dtype,
            options={"window_size": args.window_size, "stride": args.stride}))
    ranker.to(args.device).eval()
    results: dict[str, dict] = {}
    orders: dict[str, list[list[int]]] = {}
    for mode in ("single_token", "generate"):
        ranker.options["mode"] = mode
        ranker.score_lists(lists[:1], batch_size=1)  # warm-up
        times, mode_orders = [], []
        for lst in lists:  # per-query latency: one query at a time, its windows sequential
            t0 = time.perf_counter()
            scores = ranker.score_lists([lst], batch_size=1)[0]
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            mode_orders.append(sorted(range(len(scores)), key=lambda i: -scores[i]))
        times.sort()
        results[mode] = {"median_s": statistics.median(times), "p90_s": times[min(len(times) - 1, int(0.9 * len(times)))]}
        orders[mode] = mode_orders
    ranks = [([o.index(i) for i in range(len(o))], [g.index(i) for i in range(len(g))])
             for o, g in zip(orders["single_token"], orders["generate"])]
    tau = statistics.mean(kendalltau(a, b).statistic for a, b in ranks)
    report = {
        "model": json.loads(args.config) or "tiny-llama (hidden 32, 2 layers, vocab 32000)",
        "device": args.device, "queries": args.queries, "candidates": args.candidates,
        "window_size": args.window_size, "stride": args.stride, "threads": torch.get_num_threads(),
        **{f"{m}_{k}": v for m, r in results.items() for k, v in r.items()},
        "speedup_median": results["generate"]["median_s"] / results["single_token"]["median_s"],
        "kendall_tau": tau,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"| FIRST latency ({args.device}) | single-token {results['single_token']['median_s']:.3f}s "
          f"(p90 {results['single_token']['p90_s']:.3f}) | generate {results['generate']['median_s']:.3f}s "
          f"(p90 {results['generate']['p90_s']:.3f}) | {report['speedup_median']:.1f}x | tau {tau:.3f} |")
    return report


if __name__ == "__main__":
    main()
