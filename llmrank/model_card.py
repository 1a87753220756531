"""Model cards (``README.md``) for llmrank folders, with Hub ``model-index`` metadata.

:func:`write_model_card` describes what a checkpoint or exported folder holds --
``llmrank_config.json`` / ``llmrank_export.json`` (family, base model, LoRA, layout),
``recipe.yaml`` (objective terms, training data) and evaluation JSON files -- as
:class:`huggingface_hub.ModelCardData` + :class:`~huggingface_hub.EvalResult` rendered through
``llmrank/templates/model_card.md``. Citations are data next to the code they describe: the
family class's ``citation`` and each objective term's ``LossSpec.citation``.
Evaluation results are read by :mod:`llmrank.model_index`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, is_dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import ModelCard, ModelCardData
from transformers import AutoTokenizer

from llmrank import losses
from llmrank.checkpoint_layout import (
    BACKBONE_DIR,
    CARD_NAME,
    CONFIG_NAME,
    EXPORT_META,
    RECIPE_NAME,
    is_adapter_checkpoint,
)
from llmrank.io_utils import atomic_write_text
from llmrank.model_index import (
    EVAL_RESULT_GLOBS,
    eval_table,
    folder_eval_results,
    model_index_results,
    parse_eval_results,
    read_eval_results,
)
from llmrank.rankers.base import family_class
from llmrank.rankers.seq2seq import token_id

TEMPLATE_PATH = Path(__file__).parent / "templates" / "model_card.md"
#: Hub ``library_name`` per export format (adapters: ``peft``, llmrank's layout: ``llmrank``)
LIBRARY_BY_FORMAT = {"sentence-transformers": "sentence-transformers", "transformers": "transformers", "vllm": "transformers"}
_SECRET_KEY = re.compile(r"token|secret|password|api[_-]?key", re.I)
_DECODER = re.compile(r"CausalLM|llama|mistral|qwen|gemma|phi|gpt|opt", re.I)


# ----------------------------------------------------------------------------------- recipe
def _redact(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: ("<redacted>" if _SECRET_KEY.search(str(k)) and v else _redact(v)) for k, v in obj.items()}
    return [_redact(v) for v in obj] if isinstance(obj, list) else obj


def load_recipe(recipe: Any) -> tuple[dict[str, Any], str | None]:
    """``(recipe as dict, YAML text)`` with secrets redacted, from a path, a mapping, a dataclass or a ``to_dict`` object."""
    if recipe is None:
        return {}, None
    if isinstance(recipe, str | os.PathLike):
        text = Path(recipe).read_text().rstrip("\n")
        data = yaml.safe_load(text) or {}
        data = data if isinstance(data, dict) else {}
        if _redact(data) == data:
            return data, text  # the file as written, comments included
    else:
        data = recipe.to_dict() if hasattr(recipe, "to_dict") else asdict(recipe) if is_dataclass(recipe) else dict(recipe)
    data = _redact(data)
    return data, yaml.safe_dump(data, sort_keys=False).rstrip("\n")


def objective_terms(recipe: Mapping[str, Any]) -> list[tuple[str, float | None]]:
    """``(term name, weight)`` pairs of the recipe's ``objective``: a name, a list of terms,
    ``{terms: [...]}`` or the shorthand ``{softmax: 1.0, listmle: {weight: 0.1}}``."""
    def weight(d: Any) -> float | None:
        w = d.get("weight") if isinstance(d, Mapping) else d
        return float(w) if isinstance(w, int | float) and not isinstance(w, bool) else None

    node = recipe.get("objective")
    if isinstance(node, Mapping) and isinstance(node.get("terms"), list):
        node = node["terms"]
    if isinstance(node, str):
        return [(node, None)]
    if isinstance(node, Mapping):
        return [(str(k), weight(v)) for k, v in node.items()]
    terms = [(t.get("name") or t.get("loss"), weight(t)) for t in node or [] if isinstance(t, Mapping)]
    return [(str(n), w) for n, w in terms if n]


# ----------------------------------------------------------------------------------- card
def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def _citations(family: str, terms: list[tuple[str, float | None]], distill: bool) -> list[str]:
    """BibTeX of the family and of each objective term (``LossSpec.citation``), without repeats."""
    try:
        found = (family_class(family).citation or "").splitlines()
    except ValueError:
        found = []
    names = [n for n, _ in terms] + (["bar_distillation"] if distill else [])
    found += [getattr(losses.LOSSES.get(n), "citation", None) for n in names]
    return list(dict.fromkeys(c.strip() for c in found if c))


def _usage(ckpt: Path, family: str, options: Mapping[str, Any], export_format: str | None, is_adapter: bool) -> dict[str, Any]:
    """Template variables of the card's Usage section for the folder's layout."""
    if export_format in (None, "llmrank"):
        return {"layout": "llmrank"}
    cfg, tok = _read_json(ckpt / "config.json"), {**_read_json(ckpt / "special_tokens_map.json"), **_read_json(ckpt / "tokenizer_config.json")}
    token = lambda name: tok[name].get("content") if isinstance(tok.get(name), dict) else tok.get(name)  # noqa: E731
    out: dict[str, Any] = {
        "architecture": (cfg.get("architectures") or ["model"])[0], "eos_token": token("eos_token") or "", "pad_token": token("pad_token"),
        "query_prefix": options.get("query_prefix", "query:"), "doc_prefix": options.get("doc_prefix", "document:"),
        "st": export_format == "sentence-transformers", "layout": "first" if family == "first" else "generic",
    }  # fmt: skip
    if family == "cross-encoder":
        out["is_decoder"] = options.get("pooling") == "last"
        out["layout"] = "adapter" if is_adapter else ("decoder-seq-cls" if out["is_decoder"] else "encoder-seq-cls")
    elif family == "seq2seq":
        mode, ids = options.get("mode", "rankt5"), {"true_id": "?", "false_id": "?", "score_token_id": "?"}
        words = {k: options.get(k, d) for k, d in (("true_token", "true"), ("false_token", "false"), ("score_token", "<extra_id_10>"))}
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(ckpt))
            if mode == "monot5":
                ids.update(true_id=token_id(tokenizer, words["true_token"], what="true_token", as_text=True),
                           false_id=token_id(tokenizer, words["false_token"], what="false_token", as_text=True))  # fmt: skip
            else:
                ids["score_token_id"] = token_id(tokenizer, words["score_token"], what="score_token")
        except (OSError, ValueError):
            pass
        out.update(layout="seq2seq", seq2seq_mode=mode, query_prefix=options.get("query_prefix", "Query:"),
                   doc_prefix=options.get("doc_prefix", "Document:"), suffix=options.get("suffix", "Relevant:" if mode == "monot5" else ""),
                   **words, **ids)  # fmt: skip
    return out


def _family_detail(family: str, options: Mapping[str, Any], cfg: Mapping[str, Any], base: str) -> str:
    if family == "seq2seq":
        mode = str(options.get("mode", "")).lower()
        return "monoT5-style: P('true') from the decoder" if "mono" in mode else "RankT5-style: one decoder logit as the score"
    if family == "cross-encoder":
        decoder = _DECODER.search(" ".join([str(cfg.get("model_type", "")), *(cfg.get("architectures") or []), base]))
        return "decoder-only, last-token score (RankLLaMA-style)" if decoder else "encoder, [CLS] score head (monoBERT-style)"
    return {"first": "listwise, first-token logits"}.get(family, "")


def _hub_id(name: str | None) -> str | None:
    """``name`` if it reads as a Hub id (not an existing local path)."""
    ok = name and not name.startswith((".", "/", "~")) and not Path(name).exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", name)
    return name if ok else None


def _strings(node: Any) -> Iterable[str]:
    if isinstance(node, str):
        yield node
    for child in node.values() if isinstance(node, Mapping) else node if isinstance(node, list | tuple) else ():
        yield from _strings(child)


def build_model_card(ckpt_dir: str | os.PathLike, *, repo_id: str | None = None, model_name: str | None = None, recipe: Any = None,
                     eval_results: Any = None, datasets: list[str] | None = None, tags: list[str] | None = None,
                     license: str | None = None, load_id: str | None = None) -> ModelCard:  # fmt: skip
    """A :class:`huggingface_hub.ModelCard` for the folder; ``eval_results`` (rows, or JSON file paths)
    replace the folder's evaluation files; ``load_id`` is what the usage snippets load (default: ``repo_id``, else the folder)."""
    ckpt = Path(ckpt_dir)
    exported = _read_json(ckpt / EXPORT_META)
    meta = exported or _read_json(ckpt / CONFIG_NAME)
    settings, merged = meta.get("settings", {}), meta.get("merged_lora") or {}
    family = meta.get("family") or settings.get("family") or "unknown"
    base = str(merged.get("base_model") or settings.get("model_name_or_path") or "unknown")
    options, lora = settings.get("options") or {}, settings.get("lora")
    is_adapter = bool(exported.get("adapter")) if exported else is_adapter_checkpoint(ckpt)
    if exported and is_adapter and (adapter_cfg := _read_json(ckpt / "adapter_config.json")):
        lora = {"r": adapter_cfg.get("r"), "alpha": adapter_cfg.get("lora_alpha"), "dropout": adapter_cfg.get("lora_dropout"),
                "target_modules": "as in adapter_config.json"}  # fmt: skip
    export_format = exported.get("format") if exported else None
    library = ("peft" if is_adapter else LIBRARY_BY_FORMAT.get(str(export_format), "transformers")) if exported else "llmrank"

    recipe_dict, recipe_yaml = load_recipe(recipe if recipe is not None or not (ckpt / RECIPE_NAME).is_file() else ckpt / RECIPE_NAME)
    if eval_results is None:
        rows = folder_eval_results(ckpt)
    elif isinstance(eval_results, str | os.PathLike) or (isinstance(eval_results, list) and all(isinstance(p, str | os.PathLike) for p in eval_results)):
        rows = read_eval_results([eval_results] if isinstance(eval_results, str | os.PathLike) else eval_results)
    else:
        rows = parse_eval_results(eval_results)

    terms = objective_terms(recipe_dict)
    papers = [getattr(losses.LOSSES.get(n), "paper", None) or n for n, _ in terms]
    name = model_name or (repo_id.split("/")[-1] if repo_id else ckpt.resolve().name)
    data_block = recipe_dict.get("data")
    if datasets is None:
        found = [v for v in _strings(data_block) if _hub_id(v) and not v.endswith((".jsonl", ".json", ".tsv", ".trec", ".txt"))]
        datasets = list(dict.fromkeys(found)) or None
    hub_base = _hub_id(base)
    all_tags = ["llmrank", "reranker", "text-ranking", family, *(re.sub(r"[^a-z0-9]", "", n.lower()) for n, _ in terms), *(tags or [])]
    if library in ("sentence-transformers", "transformers"):
        all_tags.append("cross-encoder" if family == "cross-encoder" else library)
    if is_adapter:
        all_tags.append("lora")
    card_data = ModelCardData(
        model_name=name, base_model=hub_base, library_name=library, pipeline_tag="text-ranking", license=license,
        datasets=list(datasets) if datasets else None, tags=list(dict.fromkeys(t for t in all_tags if t)),
        eval_results=model_index_results(rows) or None,
    )  # fmt: skip
    if is_adapter and lora:
        weights = f"LoRA adapter (r={lora.get('r')}, alpha={lora.get('alpha')}) on `{base}`"
    else:
        weights = "full weights, merged from a LoRA adapter" if merged else "full weights"
    lora_line = None
    if lora:
        lora_line = (f"LoRA: r={lora.get('r')}, alpha={lora.get('alpha')}, dropout={lora.get('dropout')}, "
                     f"targets: {lora.get('target_modules') or 'family default'}.")  # fmt: skip
    elif merged:
        lora_line = f"Trained with LoRA (r={merged.get('r')}, alpha={merged.get('alpha')}); the adapter is merged into these weights."
    versions = []
    for pkg in ("llmrank", "torch", "transformers", "peft", "accelerate", "huggingface_hub"):
        try:
            versions.append((pkg, version(pkg)))
        except PackageNotFoundError:
            versions.append((pkg, "not installed"))
    return ModelCard.from_template(
        card_data, template_path=str(TEMPLATE_PATH), model_name=name, family=family, base_model=base,
        summary=f"A `{family}` reranker fine-tuned from `{base}` with llmrank" + (f" using {' + '.join(papers)}." if papers else "."),
        family_detail=_family_detail(family, options, _read_json(ckpt / BACKBONE_DIR / "config.json") or _read_json(ckpt / "config.json"), base),
        base_model_link=f"[{hub_base}](https://huggingface.co/{hub_base})" if hub_base else None,
        weights_kind=weights, is_adapter=is_adapter, objective_terms=papers, lora_line=lora_line,
        objective_lines=[f"`{n}`" + (f" × {w:g}" if w is not None else "") + f": {p}" for (n, w), p in zip(terms, papers)],
        max_length=settings.get("max_length", "?"), query_max_length=settings.get("query_max_length", "?"),
        dtype=settings.get("dtype", "?"), load_id=repo_id or load_id or str(ckpt), eval_table=eval_table(rows),
        first_stages=sorted({r.first_stage for r in rows if r.first_stage}), eval_files_hint=", ".join(EVAL_RESULT_GLOBS),
        training_data=yaml.safe_dump(data_block, sort_keys=False).rstrip("\n") if data_block else None,
        recipe_yaml=recipe_yaml, versions=versions, export_format=export_format,
        citations=_citations(family, terms, bool(recipe_dict.get("distill"))),
        **_usage(ckpt, family, options, export_format, is_adapter),
    )  # fmt: skip


def write_model_card(ckpt_dir: str | os.PathLike, **kwargs: Any) -> Path:
    """Render the card (:func:`build_model_card` arguments) to ``ckpt_dir/README.md`` atomically."""
    text = str(build_model_card(ckpt_dir, **kwargs))
    atomic_write_text(Path(ckpt_dir) / CARD_NAME, text if text.endswith("\n") else text + "\n")
    return Path(ckpt_dir) / CARD_NAME
