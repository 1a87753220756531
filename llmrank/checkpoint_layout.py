"""The names of an llmrank checkpoint folder and what a push or a copy leaves out.

A leaf module (standard library only): rankers save into this layout, ``merge`` and ``export``
write folders in it or in a standard layout, ``hub`` uploads folders and ``model_card``
describes them; all of them read the names from here, so none imports another for a constant.

An llmrank checkpoint::

    llmrank_config.json   family + settings (CONFIG_NAME)
    backbone/             full weights (safetensors) ... or
    adapter/              a PEFT LoRA adapter on the base model named in the config
    head.safetensors      the score head, when the family has one
    tokenizer/
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from pathlib import Path

CONFIG_NAME = "llmrank_config.json"
BACKBONE_DIR = "backbone"
ADAPTER_DIR = "adapter"
HEAD_NAME = "head.safetensors"
TOKENIZER_DIR = "tokenizer"
#: provenance file `llmrank export` writes into every exported folder (family, settings, source)
EXPORT_META = "llmrank_export.json"
RECIPE_NAME = "recipe.yaml"
CARD_NAME = "README.md"

#: Top-level entries that make up the model itself in llmrank's layout.
LAYOUT_ENTRIES = (BACKBONE_DIR, ADAPTER_DIR, TOKENIZER_DIR, HEAD_NAME)
#: Top-level files of the standard layouts (and of llmrank's config): a push deletes the remote
#: ones it does not upload again, so a repo always loads as what was pushed last.
STANDARD_LAYOUT_PATTERNS = (
    CONFIG_NAME,
    EXPORT_META,
    "config.json",
    "generation_config.json",
    "model*.safetensors",
    "model.safetensors.index.json",
    "adapter_config.json",
    "adapter_model.safetensors",
    "tokenizer*",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "modules.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
)
#: Paths (relative, POSIX) never uploaded or copied: trainer resume state, pickles, nested
#: checkpoints, caches and temporary folders. Weights travel as safetensors only, so loading a
#: pushed model never unpickles anything.
EXCLUDE_PATTERNS = (
    "checkpoint-*",
    "checkpoint-*/*",
    "optimizer.*",
    "scheduler.*",
    "scaler.*",
    "rng_state*",
    "training_args.bin",
    "*.pt",
    "*.pth",
    "*.bin",
    "*.pkl",
    ".*",
    "*/.*",
    "__pycache__/*",
    "*/__pycache__/*",
    ".tmp-*",
)


def is_model_file(name: str) -> bool:
    """Part of some model layout (llmrank's or a standard one), so stale when not pushed again."""
    if name.split("/", 1)[0] in LAYOUT_ENTRIES:
        return True
    return "/" not in name and any(fnmatch.fnmatch(name, p) for p in STANDARD_LAYOUT_PATTERNS)


def shareable_files(folder: str | os.PathLike, exclude: Iterable[str] = EXCLUDE_PATTERNS) -> list[str]:
    """Relative POSIX paths of the files a push uploads or a copy carries, sorted (see :data:`EXCLUDE_PATTERNS`)."""
    root = Path(folder)
    patterns = tuple(exclude)
    files = (f.relative_to(root).as_posix() for f in root.rglob("*") if f.is_file())
    return sorted(rel for rel in files if not any(fnmatch.fnmatch(rel, p) for p in patterns))


def is_adapter_checkpoint(folder: str | os.PathLike) -> bool:
    path = Path(folder)
    return (path / ADAPTER_DIR).is_dir() and not (path / BACKBONE_DIR).is_dir()


def checkpoint_problems(folder: str | os.PathLike) -> list[str]:
    """What a checkpoint folder lacks to be loadable by :func:`llmrank.load_ranker` (empty: fine)."""
    path = Path(folder)
    if not path.is_dir():
        return [f"{path} (folder does not exist)"]
    missing = [] if (path / CONFIG_NAME).is_file() else [CONFIG_NAME]
    tok = path / TOKENIZER_DIR
    if not tok.is_dir() or not any(tok.iterdir()):
        missing.append(f"{TOKENIZER_DIR}/")
    backbone, adapter = path / BACKBONE_DIR, path / ADAPTER_DIR
    if backbone.is_dir():
        if not (backbone / "config.json").is_file():
            missing.append(f"{BACKBONE_DIR}/config.json")
        if not list(backbone.glob("*.safetensors")):
            missing.append(f"{BACKBONE_DIR}/*.safetensors")
    elif adapter.is_dir():
        missing += [f"{ADAPTER_DIR}/{n}" for n in ("adapter_config.json", "adapter_model.safetensors") if not (adapter / n).is_file()]
    else:
        missing.append(f"{BACKBONE_DIR}/ or {ADAPTER_DIR}/")
    return missing


def check_checkpoint(folder: str | os.PathLike) -> Path:
    """Raise ``FileNotFoundError`` naming every missing piece of the checkpoint layout."""
    missing = checkpoint_problems(folder)
    if missing:
        raise FileNotFoundError(
            f"{folder} is not a complete llmrank checkpoint; missing: {', '.join(missing)} "
            "(save it with Ranker.save_pretrained / the trainer)"
        )
    return Path(folder)
