"""Bad command-line inputs for the sweep (``tests/bad_input_sweep.py``): paths, values, runs,
qrels, topics, corpora, checkpoints and signals, each through the installed ``llmrank`` script.

Each case names the text a clear one-line error must contain (the flag, file or key at fault)."""

from __future__ import annotations

import json

RUN = "q1 Q0 d1 1 2.0 bm25\nq1 Q0 d2 2 1.0 bm25\nq2 Q0 d3 1 1.0 bm25\n"
CORPUS = "".join(json.dumps({"_id": d, "title": "", "text": f"text of {d}"}) + "\n" for d in ("d1", "d2", "d3"))
TOPICS = "q1\tfirst query\nq2\tsecond query\n"
QRELS = "q1 0 d1 1\nq2 0 d3 2\n"
GOOD = {"run.trec": RUN, "corpus.jsonl": CORPUS, "topics.tsv": TOPICS, "qrels.txt": QRELS}


def _rerank(*extra: str, out: str = "out.trec") -> list[str]:
    return ["rerank", "--model", "{ckpt}", "--run", "run.trec", "--corpus", "corpus.jsonl", "--topics",
            "topics.tsv", "--out", out, "--no-progress", *extra]  # fmt: skip


def _big_run(queries: int = 300, docs: int = 60) -> dict[str, str]:
    """Enough pairs that reranking with the tiny BERT takes a few seconds (for Ctrl-C)."""
    run = "".join(f"q{q} Q0 d{q}-{d} {d + 1} {100 - d} bm25\n" for q in range(queries) for d in range(docs))
    corpus = "".join(
        json.dumps({"_id": f"d{q}-{d}", "text": f"passage {d} about topic {q} " * 6}) + "\n"
        for q in range(queries) for d in range(docs)
    )  # fmt: skip
    topics = "".join(f"q{q}\twhat about topic {q}\n" for q in range(queries))
    return {"run.trec": run, "corpus.jsonl": corpus, "topics.tsv": topics}


def _recipe(output_dir: str = "model", train: str = "train.jsonl", extra: str = "") -> str:
    return (f"model: {{family: cross-encoder, model_name_or_path: '{{bert}}', max_length: 32}}\n"
            f"data: {{train: {{format: jsonl, path: {train}}}, group_size: 2}}\n"
            f"objective: [{{name: softmax}}]\n"
            f"training: {{output_dir: {output_dir}, max_steps: 1, use_cpu: true{extra}}}\n")  # fmt: skip


TRAIN_LIST = json.dumps({"qid": "q1", "query": "q", "docs": [{"docid": "a", "text": "x"}, {"docid": "b", "text": "y"}],
                         "labels": [1, 0]}) + "\n"  # fmt: skip

CASES: list[dict] = [
    # ----------------------------------------------------------------- values (argparse types)
    {"name": "rerank --batch-size 0", "kind": "cli-value", "files": GOOD, "argv": _rerank("--batch-size", "0"),
     "expect_in_stderr": "--batch-size"},
    {"name": "rerank --batch-size -3", "kind": "cli-value", "files": GOOD, "argv": _rerank("--batch-size", "-3"),
     "expect_in_stderr": "--batch-size"},
    {"name": "rerank --top-k 0", "kind": "cli-value", "files": GOOD, "argv": _rerank("--top-k", "0"),
     "expect_in_stderr": "--top-k"},
    {"name": "rerank --top-k abc", "kind": "cli-value", "files": GOOD, "argv": _rerank("--top-k", "abc"),
     "expect_in_stderr": "--top-k"},
    {"name": "rerank unknown option", "kind": "cli-value", "files": GOOD, "argv": _rerank("--bogus", "1"),
     "expect_in_stderr": "--bogus"},
    {"name": "trec-dl --batch-size 0", "kind": "cli-value", "files": GOOD,
     "argv": ["trec-dl", "--model", "none", "--batch-size", "0"], "expect_in_stderr": "--batch-size"},
    {"name": "trec-dl --top-k > --hits", "kind": "cli-value", "files": GOOD,
     "argv": ["trec-dl", "--model", "none", "--top-k", "200", "--hits", "100", "--first-stage", "run.trec",
              "--qrels", "qrels.txt", "--topics", "topics.tsv", "--out-dir", "res"],
     "expect_in_stderr": "--hits"},
    {"name": "beir --threads 0", "kind": "cli-value", "files": GOOD,
     "argv": ["beir", "--model", "none", "--datasets", "scifact", "--threads", "0"], "expect_in_stderr": "--threads"},
    {"name": "score --batch-size 0", "kind": "cli-value", "files": {"train.jsonl": TRAIN_LIST},
     "argv": ["score", "--model", "{ckpt}", "--data", "train.jsonl", "--out", "s.jsonl", "--batch-size", "0"],
     "expect_in_stderr": "--batch-size"},
    {"name": "score --set without =", "kind": "cli-value", "files": {"train.jsonl": TRAIN_LIST},
     "argv": ["score", "--model", "{ckpt}", "--data", "train.jsonl", "--out", "s.jsonl", "--set", "split"],
     "expect_in_stderr": "--set"},
    {"name": "trec-dl unknown year", "kind": "cli-value", "files": {},
     "argv": ["trec-dl", "--model", "none", "--years", "2018"], "expect_in_stderr": "2018"},
    {"name": "beir misspelt dataset", "kind": "cli-value", "files": {},
     "argv": ["beir", "--model", "none", "--datasets", "scifcat", "--out-dir", "res"], "expect_in_stderr": "scifact"},
    {"name": "evaluate unknown measure", "kind": "cli-value", "files": GOOD,
     "argv": ["evaluate", "--run", "run.trec", "--qrels", "qrels.txt", "--measures", "nDCG@ten"],
     "expect_in_stderr": "nDCG@ten"},
    # ----------------------------------------------------------------- output paths
    {"name": "rerank --out is a folder", "kind": "cli-path", "files": {**GOOD, "outdir/": ""},
     "argv": _rerank(out="outdir"), "expect_in_stderr": "--out"},
    {"name": "rerank --out parent is a file", "kind": "cli-path", "files": {**GOOD, "notadir": "x"},
     "argv": _rerank(out="notadir/out.trec"), "expect_in_stderr": "notadir"},
    {"name": "rerank --latency is a folder", "kind": "cli-path", "files": {**GOOD, "lat/": ""},
     "argv": _rerank("--latency", "lat"), "expect_in_stderr": "--latency"},
    {"name": "rerank --latency parent is a file", "kind": "cli-path", "files": {**GOOD, "notadir": "x"},
     "argv": _rerank("--latency", "notadir/lat.json"), "expect_in_stderr": "notadir"},
    {"name": "evaluate --out-dir is a file", "kind": "cli-path", "files": {**GOOD, "ev": "x"},
     "argv": ["evaluate", "--run", "run.trec", "--qrels", "qrels.txt", "--out-dir", "ev"],
     "expect_in_stderr": "--out-dir"},
    {"name": "trec-dl --out-dir is a file", "kind": "cli-path", "files": {**GOOD, "res": "x"},
     "argv": ["trec-dl", "--model", "none", "--years", "2019", "--first-stage", "run.trec", "--qrels", "qrels.txt",
              "--topics", "topics.tsv", "--out-dir", "res"], "expect_in_stderr": "--out-dir"},
    {"name": "score --out is a folder", "kind": "cli-path", "files": {"train.jsonl": TRAIN_LIST, "o/": ""},
     "argv": ["score", "--model", "{ckpt}", "--data", "train.jsonl", "--out", "o"], "expect_in_stderr": "--out"},
    {"name": "merge-lora --out is a file", "kind": "cli-path", "files": {"merged": "x"},
     "argv": ["merge-lora", "--model", "{ckpt}", "--out", "merged"], "expect_in_stderr": "--out"},
    {"name": "train output_dir is a file", "kind": "recipe",
     "files": {"recipe.yaml": _recipe(output_dir="model"), "train.jsonl": TRAIN_LIST, "model": "x"},
     "argv": ["train", "--config", "recipe.yaml"], "expect_in_stderr": "output_dir"},
    # ----------------------------------------------------------------- input paths
    {"name": "rerank --run missing", "kind": "run", "files": GOOD,
     "argv": ["rerank", "--model", "{ckpt}", "--run", "missing.trec", "--corpus", "corpus.jsonl", "--topics",
              "topics.tsv", "--out", "out.trec"], "expect_in_stderr": "missing.trec"},
    {"name": "rerank --run is a folder", "kind": "run", "files": {**GOOD, "rundir/": ""},
     "argv": ["rerank", "--model", "{ckpt}", "--run", "rundir", "--corpus", "corpus.jsonl", "--topics",
              "topics.tsv", "--out", "out.trec"], "expect_in_stderr": "rundir"},
    {"name": "train --config is a folder", "kind": "recipe", "files": {"recipes/": ""},
     "argv": ["train", "--config", "recipes"], "expect_in_stderr": "recipes"},
    {"name": "train --config missing", "kind": "recipe", "files": {},
     "argv": ["train", "--config", "missing.yaml"], "expect_in_stderr": "missing.yaml"},
    {"name": "train data.train.path is a folder", "kind": "data",
     "files": {"recipe.yaml": _recipe(train="lists"), "lists/": ""},
     "argv": ["train", "--config", "recipe.yaml"], "expect_in_stderr": "lists"},
    {"name": "score --data is a folder", "kind": "data", "files": {"lists/": ""},
     "argv": ["score", "--model", "{ckpt}", "--data", "lists", "--out", "s.jsonl"], "expect_in_stderr": "lists"},
    {"name": "evaluate --run is a folder", "kind": "run", "files": {**GOOD, "rundir/": ""},
     "argv": ["evaluate", "--run", "rundir", "--qrels", "qrels.txt"], "expect_in_stderr": "rundir"},
    {"name": "evaluate --qrels missing", "kind": "qrels", "files": GOOD,
     "argv": ["evaluate", "--run", "run.trec", "--qrels", "nope-qrels.txt"], "expect_in_stderr": "nope-qrels.txt"},
    {"name": "evaluate --baseline missing", "kind": "run", "files": GOOD,
     "argv": ["evaluate", "--run", "run.trec", "--qrels", "qrels.txt", "--baseline", "base.trec"],
     "expect_in_stderr": "base.trec"},
    {"name": "beir --beir-dir without the dataset", "kind": "corpus", "files": {"beir/": ""},
     "argv": ["beir", "--model", "none", "--datasets", "scifact", "--beir-dir", "beir", "--out-dir", "res"],
     "expect_in_stderr": "scifact"},
    {"name": "rerank --corpus folder without corpus.jsonl", "kind": "corpus", "files": {**GOOD, "beirdir/": ""},
     "argv": ["rerank", "--model", "{ckpt}", "--run", "run.trec", "--corpus", "beirdir", "--topics", "topics.tsv",
              "--out", "out.trec"], "expect_in_stderr": "beirdir"},
    # ----------------------------------------------------------------- models and checkpoints
    {"name": "rerank --model path missing", "kind": "checkpoint", "files": GOOD,
     "argv": ["rerank", "--model", "./no-such-ckpt", "--run", "run.trec", "--corpus", "corpus.jsonl", "--topics",
              "topics.tsv", "--out", "out.trec"], "expect_in_stderr": "no-such-ckpt"},
    {"name": "rerank --model unknown Hub id offline", "kind": "checkpoint", "files": GOOD,
     "argv": ["rerank", "--model", "nobody-xyz/no-such-model", "--run", "run.trec", "--corpus", "corpus.jsonl",
              "--topics", "topics.tsv", "--out", "out.trec"], "expect_in_stderr": "nobody-xyz/no-such-model"},
    {"name": "rerank --model is a file", "kind": "checkpoint", "files": {**GOOD, "model.bin": "x"},
     "argv": ["rerank", "--model", "model.bin", "--run", "run.trec", "--corpus", "corpus.jsonl", "--topics",
              "topics.tsv", "--out", "out.trec"], "expect_in_stderr": "model.bin"},
    {"name": "rerank --model none", "kind": "checkpoint", "files": GOOD,
     "argv": ["rerank", "--model", "none", "--run", "run.trec", "--corpus", "corpus.jsonl", "--topics",
              "topics.tsv", "--out", "out.trec"], "expect_in_stderr": "--model"},
    {"name": "checkpoint without llmrank_config.json", "kind": "checkpoint", "files": {**GOOD, "ckpt/": ""},
     "argv": ["rerank", "--model", "ckpt", "--run", "run.trec", "--corpus", "corpus.jsonl", "--topics",
              "topics.tsv", "--out", "out.trec"], "expect_in_stderr": "ckpt"},
    {"name": "checkpoint with truncated llmrank_config.json", "kind": "checkpoint", "copy": {"ckpt": "{ckpt}"},
     "files": {**GOOD, "ckpt/llmrank_config.json": '{"family": "cross-encoder", "model_'},
     "argv": ["rerank", "--model", "ckpt", "--run", "run.trec", "--corpus", "corpus.jsonl", "--topics",
              "topics.tsv", "--out", "out.trec"], "expect_in_stderr": "llmrank_config.json"},
    {"name": "checkpoint with corrupt head.safetensors", "kind": "checkpoint", "copy": {"ckpt": "{ckpt}"},
     "files": {**GOOD, "ckpt/head.safetensors": b"\x00\x01garbage"},
     "argv": ["rerank", "--model", "ckpt", "--run", "run.trec", "--corpus", "corpus.jsonl", "--topics",
              "topics.tsv", "--out", "out.trec"], "expect_in_stderr": "head.safetensors"},
    {"name": "merge-lora of a checkpoint without LoRA", "kind": "checkpoint", "files": {},
     "argv": ["merge-lora", "--model", "{ckpt}", "--out", "merged"], "expect_in_stderr": "adapter"},
    {"name": "push --model missing", "kind": "checkpoint", "files": {},
     "argv": ["push", "--model", "nothing-here", "--repo-id", "me/x"], "expect_in_stderr": "nothing-here"},
    # ----------------------------------------------------------------- runs, topics, corpora, qrels
    {"name": "rerank run without topics", "kind": "topics", "files": GOOD,
     "argv": ["rerank", "--model", "{ckpt}", "--run", "run.trec", "--corpus", "corpus.jsonl", "--out", "out.trec"],
     "expect_in_stderr": "--topics"},
    {"name": "rerank topics missing a query", "kind": "topics", "files": {**GOOD, "topics.tsv": "q1\tfirst query\n"},
     "argv": _rerank(), "expect_in_stderr": "q2"},
    {"name": "rerank run document not in corpus", "kind": "corpus", "files": {**GOOD, "run.trec": RUN + "q2 Q0 d9 2 0.5 x\n"},
     "argv": _rerank(), "expect_in_stderr": "d9"},
    {"name": "rerank run with a non-numeric score", "kind": "run",
     "files": {**GOOD, "run.trec": "q1 Q0 d1 1 high bm25\n"}, "argv": _rerank(), "expect_in_stderr": "run.trec"},
    {"name": "rerank run is UTF-16", "kind": "run", "files": {**GOOD, "run.trec": RUN.encode("utf-16")},
     "argv": _rerank(), "expect_in_stderr": "run.trec"},
    {"name": "rerank corpus line is not JSON", "kind": "corpus",
     "files": {**GOOD, "corpus.jsonl": CORPUS + "{not json\n"}, "argv": _rerank(), "expect_in_stderr": "corpus.jsonl"},
    {"name": "evaluate qrels lost the relevance column", "kind": "qrels",
     "files": {**GOOD, "qrels.txt": "q1 0 d1\nq2 0 d3\n"},
     "argv": ["evaluate", "--run", "run.trec", "--qrels", "qrels.txt"], "expect_in_stderr": "qrels.txt"},
    {"name": "evaluate qrels with a non-numeric grade", "kind": "qrels",
     "files": {**GOOD, "qrels.txt": "q1 0 d1 high\n"},
     "argv": ["evaluate", "--run", "run.trec", "--qrels", "qrels.txt"], "expect_in_stderr": "qrels.txt"},
    {"name": "train recipe is not YAML", "kind": "recipe", "files": {"recipe.yaml": "model: [unclosed\n"},
     "argv": ["train", "--config", "recipe.yaml"], "expect_in_stderr": "recipe.yaml"},
    {"name": "train learning_rate -1", "kind": "recipe",
     "files": {"recipe.yaml": _recipe(), "train.jsonl": TRAIN_LIST},
     "argv": ["train", "--config", "recipe.yaml", "--learning_rate=-1"], "expect_in_stderr": "learning_rate"},
    # ----------------------------------------------------------------- signals
    {"name": "Ctrl-C while rerank reads its run", "kind": "signal", "files": {"corpus.jsonl": CORPUS, "topics.tsv": TOPICS},
     "fifo": ["run.trec"], "sigint": "fifo", "argv": _rerank(), "expect_in_stderr": "interrupted"},
    {"name": "Ctrl-C while evaluate reads its qrels", "kind": "signal", "files": {"run.trec": RUN}, "fifo": ["qrels.txt"],
     "sigint": "fifo", "argv": ["evaluate", "--run", "run.trec", "--qrels", "qrels.txt"],
     "expect_in_stderr": "interrupted"},
    {"name": "Ctrl-C while rerank loads the model and scores", "kind": "signal", "files": _big_run(), "sigint": "busy", "sigint_delay_s": 3.0,
     "argv": _rerank("--batch-size", "16"), "expect_in_stderr": "interrupted"},
]
