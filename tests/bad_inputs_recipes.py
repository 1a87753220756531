"""Bad training recipes and the one-line error each must give (data for the bad-input sweep).

Each case: ``name``; ``files`` ({relative path: text, or bytes for binary content} written under a
fresh folder ``{tmp}``); ``argv`` (arguments of the ``llmrank`` console script, ``{tmp}`` replaced by
that folder); ``expect_in_stderr`` (a substring of the one-line error). Every case must exit
non-zero with no traceback and create nothing: the recipes write to ``{tmp}/out``, which must
not exist afterwards. ``tests/test_bad_recipes.py`` replays them through ``llmrank.train.main``.
"""

from __future__ import annotations

from typing import Any

MODEL = "{tmp}/no-model-needed"  # every case fails before a model is loaded


def _recipe(objective: str = "[{name: softmax}]", training: str = "", data: str = "", model: str = "") -> str:
    return (
        f"model: {{family: cross-encoder, model_name_or_path: {MODEL}{model}}}\n"
        f"data: {{train: {{format: jsonl, path: '{{tmp}}/train.jsonl'}}{data}}}\n"
        f"objective: {objective}\n"
        f"training: {{output_dir: '{{tmp}}/out'{training}}}\n"
    )


ARGV = ["train", "{tmp}/recipe.yaml"]

BAD_RECIPES: list[dict[str, Any]] = [
    {
        "name": "objective given as one mapping instead of a list",
        "files": {"recipe.yaml": _recipe(objective="{name: softmax}")},
        "argv": ARGV,
        "expect_in_stderr": "objective is a list of terms",
    },
    {
        "name": "objective weight is not a number",
        "files": {"recipe.yaml": _recipe(objective="[{name: softmax, weight: heavy}]")},
        "argv": ARGV,
        "expect_in_stderr": "objective[0].weight must be a number",
    },
    {
        "name": "objective term is a bare string",
        "files": {"recipe.yaml": _recipe(objective="[softmax]")},
        "argv": ARGV,
        "expect_in_stderr": "objective[0] is 'softmax'",
    },
    {
        "name": "objective term name is not a string",
        "files": {"recipe.yaml": _recipe(objective="[{name: 3}]")},
        "argv": ARGV,
        "expect_in_stderr": "objective[0].name must be a loss name",
    },
    {
        "name": "unknown loss with a close match",
        "files": {"recipe.yaml": _recipe(objective="[{name: softmx}]")},
        "argv": ARGV,
        "expect_in_stderr": "did you mean 'softmax'",
    },
    {
        "name": "unknown loss parameter",
        "files": {"recipe.yaml": _recipe(objective="[{name: softmax, temprature: 2}]")},
        "argv": ARGV,
        "expect_in_stderr": "has no parameter 'temprature'",
    },
    {
        "name": "objective reduction that is not a scalar",
        "files": {"recipe.yaml": _recipe(objective="[{name: first_ranknet, reduction: none}]")},
        "argv": ARGV,
        "expect_in_stderr": "reduction must be one of mean, sum, pairs",
    },
    {
        "name": "pairs reduction on a loss other than first_ranknet",
        "files": {"recipe.yaml": _recipe(objective="[{name: softmax, reduction: pairs}]")},
        "argv": ARGV,
        "expect_in_stderr": "'softmax': reduction must be one of mean, sum",
    },
    {
        "name": "lipo_lambda on a score-only family (cross-encoder)",
        "files": {"recipe.yaml": _recipe(objective="[{name: lipo_lambda}]")},
        "argv": ARGV,
        "expect_in_stderr": "use `lambdarank` for the score-only variant",
    },
    {
        "name": "lipo_lambda on seq2seq in rankt5 mode (logit, not a log-probability)",
        "files": {
            "recipe.yaml": _recipe(objective="[{name: lipo_lambda}]").replace(
                "family: cross-encoder", "family: seq2seq, options: {mode: rankt5}"
            )
        },
        "argv": ARGV,
        "expect_in_stderr": "in mode 'rankt5'",
    },
    {
        "name": "negative learning rate",
        "files": {"recipe.yaml": _recipe(training=", learning_rate: -1")},
        "argv": ARGV,
        "expect_in_stderr": "training.learning_rate = -1.0 is invalid",
    },
    {
        "name": "zero batch size",
        "files": {"recipe.yaml": _recipe(training=", per_device_train_batch_size: 0")},
        "argv": ARGV,
        "expect_in_stderr": "training.per_device_train_batch_size = 0 is invalid",
    },
    {
        "name": "zero epochs without max_steps",
        "files": {"recipe.yaml": _recipe(training=", num_train_epochs: 0")},
        "argv": ARGV,
        "expect_in_stderr": "training.num_train_epochs = 0.0 is invalid",
    },
    {
        "name": "warmup ratio above 1",
        "files": {"recipe.yaml": _recipe(training=", warmup_ratio: 2")},
        "argv": ARGV,
        "expect_in_stderr": "training.warmup_ratio",
    },
    {
        "name": "learning rate that is not a number",
        "files": {"recipe.yaml": _recipe(training=", learning_rate: fast")},
        "argv": ARGV,
        "expect_in_stderr": "training.learning_rate: 'fast' is not a valid float",
    },
    {
        "name": "zero group size",
        "files": {"recipe.yaml": _recipe(data=", group_size: 0")},
        "argv": ARGV,
        "expect_in_stderr": "data.group_size = 0 is invalid",
    },
    {
        "name": "non-positive MRR relevance threshold",
        "files": {"recipe.yaml": _recipe(data=", mrr_min_relevance: 0")},
        "argv": ARGV,
        "expect_in_stderr": "data.mrr_min_relevance = 0.0 is invalid",
    },
    {
        "name": "unknown section with a close match",
        "files": {"recipe.yaml": _recipe() + "traning: {seed: 1}\n"},
        "argv": ARGV,
        "expect_in_stderr": "did you mean 'training'",
    },
    {
        "name": "unknown training key with a close match",
        "files": {"recipe.yaml": _recipe(training=", learning_rat: 0.1")},
        "argv": ARGV,
        "expect_in_stderr": "unknown key training.learning_rat",
    },
    {
        "name": "model.family missing",
        "files": {"recipe.yaml": _recipe().replace("family: cross-encoder, ", "")},
        "argv": ARGV,
        "expect_in_stderr": "model.family is required",
    },
    {
        "name": "recipe is not valid YAML",
        "files": {"recipe.yaml": "model: {family: cross-encoder\ntraining: [\n"},
        "argv": ARGV,
        "expect_in_stderr": "not valid YAML",
    },
    {
        "name": "recipe is UTF-16 (not UTF-8)",
        "files": {"recipe.yaml": _recipe().encode("utf-16")},
        "argv": ARGV,
        "expect_in_stderr": "not UTF-8 text",
    },
    {
        "name": "recipe is a list, not a mapping",
        "files": {"recipe.yaml": "- model\n- training\n"},
        "argv": ARGV,
        "expect_in_stderr": "a recipe is a mapping",
    },
    {
        "name": "recipe path is a directory",
        "files": {"recipe.yaml/keep.txt": "a folder named like a recipe\n"},
        "argv": ARGV,
        "expect_in_stderr": "is a directory",
    },
    {
        "name": "recipe file does not exist",
        "files": {},
        "argv": ARGV,
        "expect_in_stderr": "does not exist",
    },
    {
        "name": "output_dir is an existing file",
        "files": {"recipe.yaml": _recipe().replace("'{tmp}/out'", "'{tmp}/out.txt'"), "out.txt": "a file\n"},
        "argv": ARGV,
        "expect_in_stderr": "training.output_dir",
    },
]
