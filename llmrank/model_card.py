"""Model cards (``README.md``) for llmrank checkpoints, with Hub ``model-index`` metadata.

:func:`write_model_card` is called by the trainer on every save and by ``llmrank push``. It reads
what the checkpoint folder holds -- ``llmrank_config.json`` (family, base model, LoRA),
``recipe.yaml`` (objective terms, training data) and evaluation JSON files -- and renders
``llmrank/templates/model_card.md`` through :class:`huggingface_hub.ModelCard`.

Evaluation JSON (files matching :data:`EVAL_RESULT_GLOBS` in the folder, or passed in) may be any
of these shapes; numbers that are not int/float are ignored::

    [{"dataset": "scifact", "first_stage": "bm25-flat", "metrics": {"nDCG@10": 0.71}}, ...]
    [{"dataset": "scifact", "first_stage": "bm25", "first_stage_metrics": {"nDCG@10": 0.68},
      "reranker_metrics": {"nDCG@10": 0.71}}, ...]                  # `llmrank beir` / `trec-dl` tables
    {"rows": [...]}  or  {"results": [...]}                       # a wrapper around either list
    {"dataset": "dl19-passage", "metrics": {...}}                  # one row
    {"scifact": {"nDCG@10": 0.71}, "nfcorpus": {"nDCG@10": 0.35}}  # dataset -> metrics

``first_stage`` may also be ``{"name": ..., "metrics": {...}}``; ``split`` is optional.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from llmrank.rankers.base import ADAPTER_DIR, BACKBONE_DIR, CONFIG_NAME, EXPORT_META

logger = logging.getLogger(__name__)

TEMPLATE_PATH = Path(__file__).parent / "templates" / "model_card.md"
CARD_NAME = "README.md"
#: Hub ``library_name`` per export format (adapters: ``peft``)
LIBRARY_BY_FORMAT = {"sentence-transformers": "sentence-transformers", "transformers": "transformers", "vllm": "transformers"}
RECIPE_NAME = "recipe.yaml"
#: evaluation files picked up from the checkpoint folder
EVAL_RESULT_GLOBS = ("eval_results*.json", "beir_results*.json", "trec_dl_results*.json", "evaluation*.json")
#: metrics listed first in tables, in this order; others follow alphabetically
METRIC_ORDER = ("nDCG@10", "RR@10", "MRR@10", "R@100", "R(rel=2)@1000", "AP(rel=2)", "AP")

_DECODER_TYPES = {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi", "phi3", "gpt2", "opt"}


# ----------------------------------------------------------------------------------- citations
@dataclass(frozen=True)
class Citation:
    key: str
    title: str
    why: str
    bibtex: str


def _bib(key: str, kind: str, **f: str) -> str:
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in f.items())
    return f"@{kind}{{{key},\n{body}\n}}"


CITATIONS: dict[str, Citation] = {
    c.key: c
    for c in [
        Citation(
            "rankt5", "RankT5", "T5 rerankers scored from one decoder logit, trained with ranking losses",
            _bib("zhuang2023rankt5", "inproceedings",
                 title="RankT5: Fine-Tuning T5 for Text Ranking with Ranking Losses",
                 author="Zhuang, Honglei and Qin, Zhen and Jagerman, Rolf and Hui, Kai and Ma, Ji and Lu, Jing "
                        "and Ni, Jianmo and Wang, Xuanhui and Bendersky, Michael",
                 booktitle="Proceedings of SIGIR", year="2023", note="arXiv:2210.10634"),
        ),
        Citation(
            "monot5", "monoT5", "T5 reranking by the probability of the token 'true'",
            _bib("nogueira2020monot5", "inproceedings",
                 title="Document Ranking with a Pretrained Sequence-to-Sequence Model",
                 author="Nogueira, Rodrigo and Jiang, Zhiying and Pradeep, Ronak and Lin, Jimmy",
                 booktitle="Findings of EMNLP", year="2020", note="arXiv:2003.06713"),
        ),
        Citation(
            "monobert", "monoBERT", "BERT cross-encoder reranking from the [CLS] representation",
            _bib("nogueira2019passage", "article", title="Passage Re-ranking with BERT",
                 author="Nogueira, Rodrigo and Cho, Kyunghyun", journal="arXiv:1901.04085", year="2019"),
        ),
        Citation(
            "rankllama", "RankLLaMA", "decoder-only pointwise reranker scored from the last token",
            _bib("ma2024rankllama", "inproceedings", title="Fine-Tuning LLaMA for Multi-Stage Text Retrieval",
                 author="Ma, Xueguang and Wang, Liang and Yang, Nan and Wei, Furu and Lin, Jimmy",
                 booktitle="Proceedings of SIGIR", year="2024", note="arXiv:2310.08319"),
        ),
        Citation(
            "first", "FIRST", "listwise reranking from the logits of the first generated identifier",
            _bib("reddy2024first", "inproceedings",
                 title="FIRST: Faster Improved Listwise Reranking with Single Token Decoding",
                 author="Reddy, Revanth Gangi and Doo, JaeHyeok and Xu, Yifei and Sultan, Md Arafat and "
                        "Swain, Deevya and Sil, Avirup and Ji, Heng",
                 booktitle="Proceedings of EMNLP", year="2024", note="arXiv:2406.15657"),
        ),
        Citation(
            "listnet", "ListNet (softmax cross-entropy)", "listwise softmax loss over a query's candidates",
            _bib("cao2007listnet", "inproceedings",
                 title="Learning to Rank: From Pairwise Approach to Listwise Approach",
                 author="Cao, Zhe and Qin, Tao and Liu, Tie-Yan and Tsai, Ming-Feng and Li, Hang",
                 booktitle="Proceedings of ICML", year="2007"),
        ),
        Citation(
            "rax", "Rax", "reference definitions of the ranking losses implemented in llmrank",
            _bib("jagerman2022rax", "inproceedings", title="Rax: Composable Learning-to-Rank Using JAX",
                 author="Jagerman, Rolf and Wang, Xuanhui and Zhuang, Honglei and Qin, Zhen and "
                        "Bendersky, Michael and Najork, Marc",
                 booktitle="Proceedings of KDD", year="2022"),
        ),
        Citation(
            "poly1", "Poly-1", "softmax cross-entropy plus the first polynomial term",
            _bib("leng2022polyloss", "inproceedings",
                 title="PolyLoss: A Polynomial Expansion Perspective of Classification Loss Functions",
                 author="Leng, Zhaoqi and Tan, Mingxing and Liu, Chenxi and Cubuk, Ekin Dogus and Shi, Xiaojie "
                        "and Cheng, Shuyang and Anguelov, Dragomir",
                 booktitle="Proceedings of ICLR", year="2022", note="arXiv:2204.12511"),
        ),
        Citation(
            "listmle", "ListMLE", "Plackett-Luce likelihood of the target permutation",
            _bib("xia2008listmle", "inproceedings",
                 title="Listwise Approach to Learning to Rank: Theory and Algorithm",
                 author="Xia, Fen and Liu, Tie-Yan and Wang, Jue and Zhang, Wensheng and Li, Hang",
                 booktitle="Proceedings of ICML", year="2008"),
        ),
        Citation(
            "approxndcg", "ApproxNDCG", "NDCG with ranks approximated by sigmoids of score differences",
            _bib("qin2010approx", "article",
                 title="A General Approximation Framework for Direct Optimization of Information Retrieval Measures",
                 author="Qin, Tao and Liu, Tie-Yan and Li, Hang", journal="Information Retrieval",
                 volume="13", number="4", year="2010"),
        ),
        Citation(
            "lambdaloss", "LambdaLoss", "pairwise logistic loss weighted by metric-derived lambda weights",
            _bib("wang2018lambdaloss", "inproceedings",
                 title="The LambdaLoss Framework for Ranking Metric Optimization",
                 author="Wang, Xuanhui and Li, Cheng and Golbandi, Nadav and Bendersky, Michael and Najork, Marc",
                 booktitle="Proceedings of CIKM", year="2018"),
        ),
        Citation(
            "ranknet", "RankNet", "pairwise logistic loss on score differences",
            _bib("burges2005ranknet", "inproceedings", title="Learning to Rank Using Gradient Descent",
                 author="Burges, Chris and Shaked, Tal and Renshaw, Erin and Lazier, Ari and Deeds, Matt and "
                        "Hamilton, Nicole and Hullender, Greg",
                 booktitle="Proceedings of ICML", year="2005"),
        ),
        Citation(
            "lipo", "LiPO", "listwise preference optimization with lambda-weighted pairwise terms",
            _bib("liu2025lipo", "inproceedings",
                 title="LiPO: Listwise Preference Optimization through Learning-to-Rank",
                 author="Liu, Tianqi and Qin, Zhen and Wu, Junru and Shen, Jiaming and Khalman, Misha and "
                        "Joshi, Rishabh and Zhao, Yao and Saleh, Mohammad and Baumgartner, Simon and Liu, Jialu "
                        "and Liu, Peter J. and Wang, Xuanhui",
                 booktitle="Proceedings of NAACL", year="2025", note="arXiv:2402.01878"),
        ),
        Citation(
            "bar", "BAR (Born-Again neural Rankers)", "distillation from a teacher ranker of the same architecture",
            _bib("qin2021bar", "article", title="Born-Again Neural Rankers",
                 author="Qin, Zhen and Yan, Le and Tay, Yi and Zhuang, Honglei and Wang, Xuanhui and "
                        "Bendersky, Michael and Najork, Marc",
                 journal="arXiv:2109.15285", year="2021"),
        ),
    ]
}

#: normalised objective-term name -> (display name, citation keys)
LOSS_INFO: dict[str, tuple[str, tuple[str, ...]]] = {
    "softmax": ("softmax cross-entropy (ListNet)", ("listnet", "rax")),
    "listnet": ("softmax cross-entropy (ListNet)", ("listnet", "rax")),
    "softmaxce": ("softmax cross-entropy (ListNet)", ("listnet", "rax")),
    "uniquesoftmax": ("unique softmax", ("rax",)),
    "poly1": ("Poly-1 softmax", ("poly1", "rankt5")),
    "poly1softmax": ("Poly-1 softmax", ("poly1", "rankt5")),
    "listmle": ("ListMLE", ("listmle",)),
    "approxndcg": ("ApproxNDCG", ("approxndcg",)),
    "lambdaloss": ("LambdaLoss", ("lambdaloss",)),
    "ndcgloss2": ("LambdaLoss (NDCG-Loss2)", ("lambdaloss",)),
    "ndcgloss2pp": ("LambdaLoss (NDCG-Loss2++)", ("lambdaloss",)),
    "lambdarank": ("LambdaRank weights", ("lambdaloss",)),
    "lipo": ("LiPO-λ", ("lipo", "lambdaloss")),
    "lipolambda": ("LiPO-λ", ("lipo", "lambdaloss")),
    "pairwise": ("pairwise logistic (RankNet)", ("ranknet",)),
    "pairwiselogistic": ("pairwise logistic (RankNet)", ("ranknet",)),
    "ranknet": ("pairwise logistic (RankNet)", ("ranknet",)),
    "sigmoid": ("pointwise sigmoid cross-entropy", ()),
    "sigmoidce": ("pointwise sigmoid cross-entropy", ()),
    "bce": ("pointwise sigmoid cross-entropy", ()),
    "pointwise": ("pointwise sigmoid cross-entropy", ()),
    "mse": ("mean squared error", ()),
    "marginmse": ("margin MSE", ()),
    "lm": ("language-modelling loss on the target ranking (FIRST)", ("first",)),
    "firstlm": ("language-modelling loss on the target ranking (FIRST)", ("first",)),
    "bar": ("BAR teacher distillation", ("bar",)),
    "distill": ("teacher distillation (BAR)", ("bar",)),
    "distillation": ("teacher distillation (BAR)", ("bar",)),
}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def loss_info(name: str) -> tuple[str, tuple[str, ...]]:
    """(display name, citation keys) of an objective term; unknown names display as given."""
    key = _norm(name)
    return LOSS_INFO.get(key) or LOSS_INFO.get(key.removesuffix("loss")) or (name, ())


# ----------------------------------------------------------------------------------- evaluation
@dataclass
class EvalRow:
    """One dataset's scores: the reranker's ``metrics`` and, if known, the first stage's."""

    dataset: str
    metrics: dict[str, float]
    first_stage: str | None = None
    first_stage_metrics: dict[str, float] = field(default_factory=dict)
    split: str | None = None
    source: str | None = None


def _numbers(obj: Any) -> dict[str, float]:
    if not isinstance(obj, Mapping):
        return {}
    return {str(k): float(v) for k, v in obj.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _row(obj: Mapping[str, Any], source: str | None) -> EvalRow | None:
    dataset = obj.get("dataset") or obj.get("name") or obj.get("data")
    if not isinstance(dataset, str):
        return None
    metrics = {}
    for key in ("reranker_metrics", "metrics", "reranked", "reranked_metrics", "scores"):
        metrics = _numbers(obj.get(key))
        if metrics:
            break
    first = obj.get("first_stage") or obj.get("retriever")
    first_metrics = _numbers(obj.get("first_stage_metrics") or obj.get("baseline_metrics"))
    if isinstance(first, Mapping):
        first_metrics = first_metrics or _numbers(first.get("metrics"))
        first = first.get("name") or first.get("run")
    if not metrics and not first_metrics:
        return None
    split = obj.get("split")
    return EvalRow(
        dataset=dataset,
        metrics=metrics,
        first_stage=str(first) if first else None,
        first_stage_metrics=first_metrics,
        split=str(split) if split else None,
        source=source,
    )


def parse_eval_results(obj: Any, source: str | None = None) -> list[EvalRow]:
    """Normalise one evaluation JSON object (any shape in the module docstring) to rows."""
    if isinstance(obj, EvalRow):
        return [obj]
    if isinstance(obj, Mapping):
        for key in ("rows", "results", "datasets", "table"):
            if isinstance(obj.get(key), list):
                return parse_eval_results(obj[key], source)
        row = _row(obj, source)
        if row is not None:
            return [row]
        # {dataset: {metric: value}} or {dataset: {row fields}}
        rows = []
        for name, value in obj.items():
            if isinstance(value, Mapping):
                r = _row({"dataset": name, **value}, source) or (
                    EvalRow(dataset=str(name), metrics=_numbers(value), source=source) if _numbers(value) else None
                )
                if r is not None:
                    rows.append(r)
        return rows
    if isinstance(obj, Sequence) and not isinstance(obj, str | bytes):
        rows = []
        for item in obj:
            rows.extend(parse_eval_results(item, source))
        return rows
    return []


def read_eval_results(paths: Iterable[str | os.PathLike]) -> list[EvalRow]:
    """Rows from evaluation JSON files; unreadable files are skipped with a warning."""
    rows: list[EvalRow] = []
    for p in paths:
        try:
            rows.extend(parse_eval_results(json.loads(Path(p).read_text()), source=Path(p).name))
        except (OSError, ValueError) as exc:
            logger.warning("model card: skipping evaluation file %s (%s)", p, exc)
    return rows


def find_eval_files(ckpt_dir: str | os.PathLike) -> list[Path]:
    root = Path(ckpt_dir)
    found: set[Path] = set()
    for pattern in EVAL_RESULT_GLOBS:
        found.update(p for p in root.glob(pattern) if p.is_file())
    return sorted(found)


def _metric_order(names: Iterable[str]) -> list[str]:
    names = set(names)
    first = [m for m in METRIC_ORDER if m in names]
    return first + sorted(names - set(first))


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.4f}"


def eval_table(rows: Sequence[EvalRow]) -> str:
    """Markdown table: one line per dataset, cells ``first stage → reranked`` where both exist."""
    if not rows:
        return ""
    metrics = _metric_order({m for r in rows for m in (*r.metrics, *r.first_stage_metrics)})
    head = ["Dataset", "First stage", *metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.dataset + (f" ({r.split})" if r.split else ""), r.first_stage or "–"]
        for m in metrics:
            a, b = r.first_stage_metrics.get(m), r.metrics.get(m)
            cells.append(f"{_fmt(a)} → **{_fmt(b)}**" if a is not None and b is not None else _fmt(b if b is not None else a))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def metric_type(name: str) -> str:
    """Hub ``model-index`` metric type: ``nDCG@10`` -> ``ndcg_at_10``."""
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]+", "_", name.lower().replace("@", "_at_"))).strip("_")


def dataset_hub_id(dataset: str) -> str:
    """A Hub dataset id for ``model-index`` (BEIR names -> ``BeIR/<name>``, DL -> msmarco)."""
    name = dataset.lower()
    if "/" in dataset:
        return dataset
    if name.startswith(("dl19", "dl20", "msmarco", "trec-dl", "dl-")):
        return "microsoft/ms_marco"
    return f"BeIR/{name.split(':')[0]}"


def model_index_results(rows: Sequence[EvalRow]) -> list[Any]:
    from huggingface_hub import EvalResult

    out = []
    for r in rows:
        if r.dataset.lower() in ("average", "mean", "macro-average", "avg"):
            continue
        for m in _metric_order(r.metrics):
            out.append(
                EvalResult(
                    task_type="text-ranking",
                    task_name="Reranking",
                    dataset_type=dataset_hub_id(r.dataset),
                    dataset_name=r.dataset,
                    dataset_split=r.split,
                    metric_type=metric_type(m),
                    metric_name=m,
                    metric_value=round(r.metrics[m], 6),
                )
            )
    return out


# ----------------------------------------------------------------------------------- recipe
_SECRET_KEY = re.compile(r"token|secret|password|api[_-]?key", re.I)


def load_recipe(recipe: Any) -> tuple[dict[str, Any], str | None]:
    """``(recipe as dict, YAML text)`` from a path, a mapping, a dataclass or an object with ``to_dict``."""
    import yaml

    if recipe is None:
        return {}, None
    if isinstance(recipe, str | os.PathLike):
        text = Path(recipe).read_text()
        data = yaml.safe_load(text) or {}
        return (data if isinstance(data, dict) else {}), text.rstrip("\n")
    if hasattr(recipe, "to_dict"):
        data = recipe.to_dict()
    elif is_dataclass(recipe) and not isinstance(recipe, type):
        data = asdict(recipe)
    elif isinstance(recipe, Mapping):
        data = dict(recipe)
    else:
        raise TypeError(f"cannot read a recipe from {type(recipe).__name__}")
    data = _redact(data)
    return data, yaml.safe_dump(data, sort_keys=False).rstrip("\n")


def _redact(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: ("<redacted>" if _SECRET_KEY.search(str(k)) and v else _redact(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact(v) for v in obj]
    return obj


def objective_terms(recipe: Mapping[str, Any]) -> list[tuple[str, float | None]]:
    """``(term name, weight)`` pairs of the recipe's ``objective`` (list, mapping or string)."""
    obj = recipe.get("objective", recipe.get("loss"))
    terms: list[tuple[str, float | None]] = []

    def weight(d: Mapping[str, Any]) -> float | None:
        w = d.get("weight")
        return float(w) if isinstance(w, int | float) else None

    def visit(node: Any) -> None:
        if isinstance(node, str):
            terms.append((node, None))
        elif isinstance(node, Mapping):
            name = node.get("name") or node.get("loss") or node.get("type")
            if isinstance(name, str):
                terms.append((name, weight(node)))
                return
            for key in ("terms", "losses"):
                if key in node:
                    visit(node[key])
                    return
            for k, v in node.items():  # {softmax: 1.0} or {softmax: {weight: 1.0}}
                if isinstance(v, int | float):
                    terms.append((str(k), float(v)))
                elif isinstance(v, Mapping):
                    terms.append((str(k), weight(v)))
                elif v is None:
                    terms.append((str(k), None))
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(obj)
    return terms


# ----------------------------------------------------------------------------------- card
def _looks_like_hub_id(name: str | None) -> bool:
    if not name or name.startswith((".", "/", "~")) or Path(name).exists():
        return False
    return bool(re.fullmatch(r"[\w.-]+(/[\w.-]+)?", name))


def _backbone_config(ckpt: Path, base: str | None) -> dict[str, Any]:
    for cand in (ckpt / BACKBONE_DIR / "config.json", ckpt / "config.json", Path(base or "") / "config.json"):
        try:
            if cand.is_file():
                return json.loads(cand.read_text())
        except (OSError, ValueError):
            pass
    return {}


def _family_citations(family: str, options: Mapping[str, Any], cfg: Mapping[str, Any], base: str) -> tuple[str, list[str]]:
    if family == "seq2seq":
        mode = str(options.get("mode", "")).lower()
        if "mono" in mode:
            return "monoT5-style: P('true') from the decoder", ["monot5"]
        if "rank" in mode:
            return "RankT5-style: one decoder logit as the score", ["rankt5"]
        return "T5 reranker", ["rankt5", "monot5"]
    if family == "first":
        return "listwise, first-token logits", ["first"]
    if family == "cross-encoder":
        model_type = str(cfg.get("model_type", "")).lower()
        archs = " ".join(cfg.get("architectures") or [])
        decoder = model_type in _DECODER_TYPES or "CausalLM" in archs or re.search(r"llama|mistral|qwen|gemma", base, re.I)
        if decoder:
            return "decoder-only, last-token score (RankLLaMA-style)", ["rankllama"]
        return "encoder, [CLS] score head (monoBERT-style)", ["monobert"]
    return "", []


def _versions() -> list[tuple[str, str]]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg in ("llmrank", "torch", "transformers", "peft", "accelerate", "huggingface_hub"):
        try:
            out.append((pkg, version(pkg)))
        except PackageNotFoundError:
            out.append((pkg, "not installed"))
    return out


def build_model_card(
    ckpt_dir: str | os.PathLike,
    *,
    repo_id: str | None = None,
    model_name: str | None = None,
    recipe: Any = None,
    eval_results: Any = None,
    datasets: Sequence[str] | None = None,
    tags: Sequence[str] | None = None,
    license: str | None = None,
    load_id: str | None = None,
) -> Any:
    """A :class:`huggingface_hub.ModelCard` for the checkpoint (see :func:`write_model_card`);
    ``load_id`` is the id/path the usage snippets load (default: ``repo_id``, else the folder)."""
    from huggingface_hub import ModelCard, ModelCardData

    ckpt = Path(ckpt_dir)
    exported = _read_json(ckpt / EXPORT_META)
    meta = exported or _read_json(ckpt / CONFIG_NAME)
    settings = meta.get("settings", {})
    family = meta.get("family") or settings.get("family") or "unknown"
    merged = meta.get("merged_lora") or {}
    base = str(merged.get("base_model") or settings.get("model_name_or_path") or "unknown")
    lora = settings.get("lora")
    if exported:
        is_adapter = bool(exported.get("adapter"))
        if is_adapter:
            lora = _adapter_lora(ckpt) or lora
    else:
        is_adapter = (ckpt / ADAPTER_DIR).is_dir() and not (ckpt / BACKBONE_DIR).is_dir()
    export_format = exported.get("format") if exported else None
    library = "llmrank"
    if exported:
        library = "peft" if is_adapter else LIBRARY_BY_FORMAT.get(str(export_format), "transformers")

    if recipe is None and (ckpt / RECIPE_NAME).is_file():
        recipe = ckpt / RECIPE_NAME
    recipe_dict, recipe_yaml = load_recipe(recipe)

    # evaluation rows: explicit ones win over the folder's files
    if eval_results is None:
        rows = read_eval_results(find_eval_files(ckpt))
    elif isinstance(eval_results, str | os.PathLike):
        rows = read_eval_results([eval_results])
    elif isinstance(eval_results, list) and all(isinstance(p, str | os.PathLike) for p in eval_results):
        rows = read_eval_results(eval_results)
    else:
        rows = parse_eval_results(eval_results)

    terms = objective_terms(recipe_dict)
    cite_keys: list[str] = []
    family_detail, fam_keys = _family_citations(family, settings.get("options") or {}, _backbone_config(ckpt, base), base)
    cite_keys += fam_keys
    objective_lines, objective_names = [], []
    for name, w in terms:
        display, keys = loss_info(name)
        objective_names.append(display)
        objective_lines.append(f"`{name}`" + (f" × {w:g}" if w is not None else "") + f": {display}")
        cite_keys += keys
    if recipe_dict.get("distill") and "bar" not in cite_keys:
        cite_keys.append("bar")
    citations = [CITATIONS[k] for k in dict.fromkeys(cite_keys)]

    name = model_name or (repo_id.split("/")[-1] if repo_id else ckpt.resolve().name)
    data_block = recipe_dict.get("data")
    training_data = None
    if data_block:
        import yaml

        training_data = yaml.safe_dump(data_block, sort_keys=False).rstrip("\n")
    if datasets is None:
        found = []
        for v in _walk_strings(data_block):
            if _looks_like_hub_id(v) and "/" in v and not v.endswith((".jsonl", ".json", ".tsv", ".trec", ".txt")):
                found.append(v)
        datasets = list(dict.fromkeys(found)) or None

    hub_base = base if _looks_like_hub_id(base) else None
    all_tags = ["llmrank", "reranker", "text-ranking", family, *(_norm(t) for t, _ in terms)]
    if library in ("sentence-transformers", "transformers"):
        all_tags.append("cross-encoder" if family == "cross-encoder" else library)
    if is_adapter:
        all_tags.append("lora")
    all_tags += list(tags or [])
    results = model_index_results(rows)
    card_data = ModelCardData(
        model_name=name,
        base_model=hub_base,
        library_name=library,
        pipeline_tag="text-ranking",
        license=license,
        datasets=list(datasets) if datasets else None,
        tags=list(dict.fromkeys(t for t in all_tags if t)),
        eval_results=results or None,
    )
    weights = (
        f"LoRA adapter (r={lora.get('r')}, alpha={lora.get('alpha')}) on `{base}`"
        if is_adapter and lora
        else ("full weights, merged from a LoRA adapter" if merged else "full weights")
    )
    lora_line = None
    if lora:
        targets = lora.get("target_modules") or "family default"
        lora_line = f"LoRA: r={lora.get('r')}, alpha={lora.get('alpha')}, dropout={lora.get('dropout')}, targets: {targets}."
    elif merged:
        lora_line = f"Trained with LoRA (r={merged.get('r')}, alpha={merged.get('alpha')}); the adapter is merged into these weights."
    first_stages = sorted({r.first_stage for r in rows if r.first_stage})
    summary = (
        f"A `{family}` reranker fine-tuned from `{base}` with llmrank"
        + (f" using {' + '.join(objective_names)}." if objective_names else ".")
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE_PATH),
        model_name=name,
        summary=summary,
        family=family,
        family_detail=family_detail,
        base_model=base,
        base_model_link=f"[{hub_base}](https://huggingface.co/{hub_base})" if hub_base else None,
        weights_kind=weights,
        is_adapter=is_adapter,
        objective_terms=objective_names,
        objective_lines=objective_lines,
        lora_line=lora_line,
        max_length=settings.get("max_length", "?"),
        query_max_length=settings.get("query_max_length", "?"),
        dtype=settings.get("dtype", "?"),
        load_id=repo_id or load_id or str(ckpt),
        eval_table=eval_table(rows),
        first_stages=first_stages,
        eval_files_hint=", ".join(EVAL_RESULT_GLOBS),
        training_data=training_data,
        recipe_yaml=recipe_yaml,
        versions=_versions(),
        citations=citations,
        export_format=export_format,
        **_usage(ckpt, family, settings, export_format, is_adapter),
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def _adapter_lora(ckpt: Path) -> dict[str, Any] | None:
    cfg = _read_json(ckpt / "adapter_config.json")
    if not cfg:
        return None
    return {"r": cfg.get("r"), "alpha": cfg.get("lora_alpha"), "dropout": cfg.get("lora_dropout"), "target_modules": "as in adapter_config.json"}


def _usage(ckpt: Path, family: str, settings: Mapping[str, Any], export_format: str | None, is_adapter: bool) -> dict[str, Any]:
    """Template variables of the card's Usage section for the folder's layout."""
    if not export_format or export_format == "llmrank":
        return {"layout": "llmrank"}
    cfg = _read_json(ckpt / "config.json")
    tok = _read_json(ckpt / "tokenizer_config.json")
    special = _read_json(ckpt / "special_tokens_map.json")

    def token(name: str) -> str | None:
        value = tok.get(name) or special.get(name)
        return value.get("content") if isinstance(value, dict) else value

    options = settings.get("options") or {}
    architecture = (cfg.get("architectures") or ["model"])[0]
    out: dict[str, Any] = {
        "architecture": architecture,
        "eos_token": token("eos_token") or "",
        "pad_token": token("pad_token"),
        "query_prefix": options.get("query_prefix", "query:"),
        "doc_prefix": options.get("doc_prefix", "document:"),
        "st": export_format == "sentence-transformers",
    }
    if family == "cross-encoder":
        out["is_decoder"] = options.get("pooling") == "last"
        out["layout"] = "adapter" if is_adapter else ("decoder-seq-cls" if out["is_decoder"] else "encoder-seq-cls")
    elif family == "seq2seq":
        mode = options.get("mode", "rankt5")
        out.update(
            layout="seq2seq",
            seq2seq_mode=mode,
            query_prefix=options.get("query_prefix", "Query:"),
            doc_prefix=options.get("doc_prefix", "Document:"),
            suffix=options.get("suffix", "Relevant:" if mode == "monot5" else ""),
            score_token=options.get("score_token", "<extra_id_10>"),
            true_token=options.get("true_token", "true"),
            false_token=options.get("false_token", "false"),
            **_token_ids(ckpt, mode, options),
        )
    elif family == "first":
        out["layout"] = "first"
    else:
        out["layout"] = "generic"
    return out


def _token_ids(ckpt: Path, mode: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Vocabulary ids the seq2seq snippet reads (looked up with the exported tokenizer)."""
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(ckpt))
    except (OSError, ValueError):
        return {"true_id": "?", "false_id": "?", "score_token_id": "?"}
    from llmrank.rankers.seq2seq import token_id

    out: dict[str, Any] = {"true_id": "?", "false_id": "?", "score_token_id": "?"}
    try:
        if mode == "monot5":
            out["true_id"] = token_id(tokenizer, options.get("true_token", "true"), what="true_token", as_text=True)
            out["false_id"] = token_id(tokenizer, options.get("false_token", "false"), what="false_token", as_text=True)
        else:
            out["score_token_id"] = token_id(tokenizer, options.get("score_token", "<extra_id_10>"), what="score_token")
    except ValueError:
        pass
    return out


def _walk_strings(node: Any) -> Iterable[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for v in node.values():
            yield from _walk_strings(v)
    elif isinstance(node, list | tuple):
        for v in node:
            yield from _walk_strings(v)


def write_model_card(ckpt_dir: str | os.PathLike, **kwargs: Any) -> Path:
    """Render the card (:func:`build_model_card` arguments) to ``ckpt_dir/README.md`` atomically."""
    ckpt = Path(ckpt_dir)
    card = build_model_card(ckpt, **kwargs)
    target = ckpt / CARD_NAME
    fd, tmp = tempfile.mkstemp(prefix=".tmp-card-", suffix=".md", dir=ckpt)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(str(card))
            if not str(card).endswith("\n"):
                fh.write("\n")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
