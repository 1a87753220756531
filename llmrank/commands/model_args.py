"""Model-loading options shared by every command that takes ``--model``.

    llmrank rerank --model castorini/monot5-base-msmarco --revision 77f8e3f ...
    llmrank rerank --model ./rankllama --family seq-cls --template model-card ...

``--trust-remote-code`` is the only way to run Python shipped with a model: nothing in a
checkpoint can turn it on (see ``docs/loading.md``).
"""

from __future__ import annotations

import argparse
from typing import Any

#: ``--option`` keys that are ranker settings (``RankerSettings`` fields), not family options.
SETTING_OPTIONS = ("max_length", "query_max_length", "dtype", "attn_implementation")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--family``, ``--template``, ``--option``, ``--revision``, ``--trust-remote-code`` (``--model`` is the command's)."""
    g = parser.add_argument_group("model loading (published rerankers; detected from the config files by default)")
    g.add_argument("--family", help="force the ranker family: seq-cls, cross-encoder, seq2seq, first, yes-no")
    g.add_argument("--template", help="prompt/input template of the family (FIRST: first | rank_llm; "
                   "RankLLaMA: tevatron | model-card; yes-no: a template name)")
    g.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="family option or ranker setting (repeatable, YAML value), e.g. --option mode=rankt5 "
                   "--option max_length=196")
    g.add_argument("--revision", help="Hub revision (branch, tag or commit) of the model, pinned for its "
                   "tokenizer and adapter too")
    g.add_argument("--trust-remote-code", action="store_true",
                   help="run Python code shipped with the model (off by default; never taken from a checkpoint)")


def model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of :func:`llmrank.load_ranker` from the options of :func:`add_model_arguments`."""
    import yaml

    options: dict[str, Any] = {}
    for item in getattr(args, "option", None) or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--option {item!r}: expected KEY=VALUE, e.g. --option mode=rankt5")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ValueError(f"--option {item!r}: the value is not valid YAML") from None
    kwargs: dict[str, Any] = {"trust_remote_code": bool(getattr(args, "trust_remote_code", False))}
    for name in SETTING_OPTIONS:  # ranker settings rather than family options
        if name in options:
            kwargs[name] = options.pop(name)
    for name in ("family", "template", "revision"):
        if getattr(args, name, None):
            kwargs[name] = getattr(args, name)
    if options:
        kwargs["options"] = options
    return kwargs
