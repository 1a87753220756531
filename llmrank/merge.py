"""Merge a LoRA checkpoint into a standalone model (``llmrank merge-lora``).

The adapter checkpoint (``adapter/`` + the base model named in ``llmrank_config.json``) is
loaded, ``PeftModel.merge_and_unload`` folds ``W + (alpha/r)·B·A`` into the base weights, and the
result is saved with the ordinary layout: ``backbone/`` (full weights, safetensors),
``head.safetensors``, ``tokenizer/`` (also copied into ``backbone/`` so that folder loads
with plain ``transformers``) and ``llmrank_config.json`` with ``lora`` removed (the merge
is recorded under ``merged_lora``). Side files (``recipe.yaml``, evaluation JSON) are copied and
the model card is rewritten. The folder is built next to the destination and moved into place
at the end, so an interrupted merge never leaves a half-written model behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from llmrank.checkpoint_layout import (
    ADAPTER_DIR,
    BACKBONE_DIR,
    CARD_NAME,
    CONFIG_NAME,
    LAYOUT_ENTRIES,
    check_checkpoint,
    shareable_files,
)
from llmrank.io_utils import replace_dir
from llmrank.loading import load_ranker
from llmrank.model_card import write_model_card

__all__ = ["merge_lora", "merge_ranker"]


def merge_ranker(ranker: Any) -> Any:
    """Fold the ranker's LoRA adapter into its backbone, in place; returns the ranker."""
    if not ranker.is_peft:
        raise ValueError("this ranker has no LoRA adapter to merge")
    ranker.backbone = ranker.backbone.merge_and_unload()
    ranker.settings.lora = None
    return ranker


def merge_lora(
    ckpt_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    overwrite: bool = False,
    write_card: bool = True,
) -> Path:
    """Write a standalone merged copy of the LoRA checkpoint ``ckpt_dir`` to ``out_dir``.

    Raises ``FileNotFoundError`` for an incomplete checkpoint, ``ValueError`` if it holds full
    weights already or ``out_dir`` exists (unless ``overwrite``). Returns ``out_dir``.
    """
    src = check_checkpoint(ckpt_dir)
    if (src / BACKBONE_DIR).is_dir() or not (src / ADAPTER_DIR).is_dir():
        raise ValueError(f"{src} holds full weights ({BACKBONE_DIR}/), not a LoRA adapter: nothing to merge")
    out = Path(out_dir)
    if out.resolve() == src.resolve():
        raise ValueError("--out must differ from --model (the adapter checkpoint is kept)")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"{out} exists and is not empty; choose another --out or pass --overwrite")

    meta = json.loads((src / CONFIG_NAME).read_text())
    lora = dict(meta.get("settings", {}).get("lora") or {})
    ranker = merge_ranker(load_ranker(src))

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tmp-merge-", dir=out.parent))
    try:
        staged = work / "model"
        ranker.save_pretrained(staged)
        if not any((staged / BACKBONE_DIR).glob("tokenizer*")):
            # make backbone/ a complete transformers folder: families' load_backbone reads the
            # tokenizer from the model path, and plain AutoModel/AutoTokenizer users can load it
            ranker.tokenizer.save_pretrained(staged / BACKBONE_DIR)
        # side files of the adapter checkpoint (recipe, evaluation results, trainer state)
        for rel in shareable_files(src):
            top = rel.split("/", 1)[0]
            if top in LAYOUT_ENTRIES or top in (CONFIG_NAME, CARD_NAME):
                continue
            dest = staged / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / rel, dest)
        new_meta = json.loads((staged / CONFIG_NAME).read_text())
        new_meta["merged_lora"] = {
            "base_model": meta.get("settings", {}).get("model_name_or_path"),
            "r": lora.get("r"),
            "alpha": lora.get("alpha"),
            "target_modules": lora.get("target_modules"),
        }
        (staged / CONFIG_NAME).write_text(json.dumps(new_meta, indent=2))
        if write_card:
            write_model_card(staged)
        replace_dir(staged, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out

