"""FIRST latency: single-token decoding vs generating the full permutation (Reddy et al., EMNLP 2024;
Chen, Pradeep & Lin 2024 report 21-42% lower latency for 7B models on GPUs).

Same model, same candidates, same sliding windows in one run; per-query latency (median, p90), the
ratio, and Kendall's tau between the two final orderings. Default: a tiny random Llama on CPU (a
random model rarely emits EOS, so generation runs its full ~4n-token budget, like a real model does).
``--config`` takes a JSON LlamaConfig override for a larger Llama-shaped model on a GPU.

``--agree-steps N`` adds the second half of the issue's target, "identical orderings on a model
trained to agree": the learning test's model (2-layer, 64-wide Llama, Mistral's tokenizer) is
first trained with FIRST's objective (LM + 10 x weighted RankNet) on windows with one correct
order each, then both modes rank held-out windows with it; the report gives how many orderings
are identical, Kendall's tau, how many match the correct order, and each mode's latency there.

    python bench/first_latency.py                       # tiny, CPU
    python bench/first_latency.py --agree-steps 3000    # + a model trained to agree (~6 min)
    python bench/first_latency.py --config '{"hidden_size": 4096, "num_hidden_layers": 32, ...}' --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from llmrank.testing.first_task import compare_modes, gold_windows, make_first_model, train_first
from llmrank.testing.tiny_models import make_tiny_llama

ROOT = Path(__file__).resolve().parents[1]


def build_model(folder: Path, config_override: dict) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    make_tiny_llama(folder)
    if config_override:
        config = LlamaConfig.from_pretrained(folder)
        for k, v in config_override.items():
            setattr(config, k, v)
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def shared_prefix(ranker, lists, window: int, stride: int) -> dict:  # noqa: ANN001
    """What a KV cache of the shared prompt prefix could save: per query, the tokens its windows
    share from the start (system message, instruction, query) as a fraction of a window's prompt,
    and the prefix all queries share. FIRST's prompt names the passage count and the query before
    the passages, so only that head is common; everything after it changes with each window."""
    from llmrank.data.record import RankingList

    def lcp(a: list[int], b: list[int]) -> int:
        k = 0
        while k < min(len(a), len(b)) and a[k] == b[k]:
            k += 1
        return k

    per_query, lengths, firsts = [], [], []
    for lst in lists:
        starts = list(range(0, max(1, len(lst.docs) - window + 1), stride))[:2]
        if len(starts) < 2:
            continue
        ids = [ranker.encode(RankingList(lst.qid, lst.query, lst.docs[i : i + window],
                                         lst.labels[i : i + window])).prompt_ids for i in starts]  # fmt: skip
        per_query.append(lcp(ids[0], ids[1]))
        lengths.append(statistics.mean(len(x) for x in ids))
        firsts.append(ids[0])
    across = min(lcp(firsts[0], f) for f in firsts) if firsts else 0
    return {
        "windows_prompt_tokens_mean": statistics.mean(lengths) if lengths else None,
        "query_prefix_tokens_mean": statistics.mean(per_query) if per_query else None,
        "query_prefix_fraction": statistics.mean(p / n for p, n in zip(per_query, lengths)) if lengths else None,
        "all_queries_prefix_tokens": across,
    }


def trained_to_agree(steps: int, lr: float, windows: int = 96) -> dict:
    """Train the learning test's model (:mod:`llmrank.testing.first_task`: 2-layer, 64-wide Llama, FIRST's
    objective, windows of four passages with distinct grades), then rank held-out windows in both
    modes, one window per call: per-window latency, identical orderings, Kendall's tau, and how
    often each mode gives the correct order."""
    from llmrank.rankers.base import RankerSettings
    from llmrank.rankers.first import FirstRanker

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = make_first_model(Path(tmp) / "agree")
        ranker = FirstRanker.build(RankerSettings(family="first", model_name_or_path=str(path), max_length=512,
                                                  options={"window_size": 4, "stride": 2}))  # fmt: skip
    t0 = time.perf_counter()
    logs = train_first(ranker, gold_windows(steps * 8, seed=1), steps, batch_size=8, lr=lr)
    train_s = time.perf_counter() - t0
    val = gold_windows(windows, seed=2)
    timed: dict[str, list[float]] = {}
    orders: dict[str, list[list[int]]] = {}
    for mode in ("single_token", "generate"):
        ranker.rank_windows(val[:1], mode=mode)  # warm-up
        times, got = [], []
        for lst in val:
            t = time.perf_counter()
            got.append(ranker.rank_windows([lst], mode=mode)[0])
            times.append(time.perf_counter() - t)
        timed[mode], orders[mode] = times, got
    return {
        "model": "llama hidden 64, 2 layers, Mistral v0.1 tokenizer", "task": "gold counts, window 4",
        "objective": "lm x 1 + first_ranknet x 10", "steps": steps, "batch_size": 8, "lr": lr,
        "train_s": train_s, "final_logs": logs,
        **compare_modes(orders["single_token"], orders["generate"], val),
        **{f"{m}_median_s": statistics.median(t) for m, t in timed.items()},
        "speedup_median": statistics.median(timed["generate"]) / statistics.median(timed["single_token"]),
    }  # fmt: skip


def dl19_lists(queries: int, top_k: int):  # noqa: ANN201
    """The first ``queries`` DL19 BM25 lists with real passages, when ../shared/data is there."""
    import os

    from llmrank.rerank import build_lists
    from llmrank.runs import read_rank_llm

    shared = Path(os.environ.get("LLMRANK_SHARED_DATA", ROOT.parent / "shared" / "data"))
    source = shared / "trec-dl-2019" / "bm25_top100.json"
    if not source.exists():
        return None
    run, topics, docs = read_rank_llm(source)
    qids = list(run)[:queries]
    return build_lists({q: run[q] for q in qids}, topics, docs, top_k)


def main(argv: list[str] | None = None) -> dict:
    from scipy.stats import kendalltau

    from llmrank.data.record import Doc, RankingList
    from llmrank.io_utils import atomic_write_json
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
    ap.add_argument("--agree-steps", type=int, default=0, help="also train a model to agree (0: skip)")
    ap.add_argument("--agree-lr", type=float, default=1e-3)
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
    # KV-cache reuse of the shared prompt head: measured on real DL19 passages when present
    real = dl19_lists(10, 100)
    report["prefix_reuse"] = {
        "source": "DL19 BM25 top-100, 10 queries" if real else "bench passages",
        "max_passage_words": ranker.options.get("max_passage_words"),
        **shared_prefix(ranker, real or lists, args.window_size, args.stride),
    }
    if args.agree_steps:
        report["trained_to_agree"] = trained_to_agree(args.agree_steps, args.agree_lr)
    atomic_write_json(args.out, report)
    print(json.dumps(report, indent=2))
    print(f"| FIRST latency ({args.device}) | single-token {results['single_token']['median_s']:.3f}s "
          f"(p90 {results['single_token']['p90_s']:.3f}) | generate {results['generate']['median_s']:.3f}s "
          f"(p90 {results['generate']['p90_s']:.3f}) | {report['speedup_median']:.1f}x | tau {tau:.3f} |")
    if "trained_to_agree" in report:
        a = report["trained_to_agree"]
        print(f"| FIRST trained to agree ({a['steps']} steps) | identical {a['identical_orderings']:.0%} "
              f"| tau {a['kendall_tau']:.3f} | correct: single-token {a['single_token_correct_order']:.0%}, "
              f"generate {a['generate_correct_order']:.0%} | {a['speedup_median']:.1f}x |")
    return report


if __name__ == "__main__":
    main()
