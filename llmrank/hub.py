"""Share checkpoints on the Hugging Face Hub: validate, export, card, one commit.

:func:`push_checkpoint` is what ``llmrank push`` and the trainer's ``hub:`` block call. By default
(``format: auto``) the checkpoint is first exported (:mod:`llmrank.export`) to the standard layout
of its family, which other tools load: a sentence-transformers / transformers sequence-classification
folder for cross-encoders, a stock T5 or causal LM for seq2seq and FIRST (LoRA merged, or a PEFT
adapter with ``adapter``). A checkpoint that cannot be exported exactly (e.g. ``cls`` pooling on
BERT) is pushed in llmrank's own layout with a warning naming why; ``format: llmrank`` asks for
that layout, and an explicit standard format that cannot be written is an error.

A push is a single Hub commit (``HfApi.create_commit``): either every file lands, or none does,
so a failed push never leaves a half-updated model that a later push could not fix. Stale model
files of any layout (say ``adapter/`` after pushing a merged model over an adapter one, or
llmrank's ``backbone/`` after pushing the standard layout) are deleted in that same commit, so
the repo always loads as what was pushed last.

The token comes from ``token=``, else ``HF_TOKEN`` or the ``hf auth login`` cache (through
:func:`huggingface_hub.get_token`). It is handed to ``HfApi`` and never printed, logged or
written to a file.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from llmrank.export import FORMATS, ExportError, default_format, export_checkpoint
from llmrank.model_card import EXPORT_META
from llmrank.rankers.base import ADAPTER_DIR, BACKBONE_DIR, CONFIG_NAME, HEAD_NAME, TOKENIZER_DIR

logger = logging.getLogger(__name__)

STRATEGIES = ("end", "every_save")

#: Paths (relative, POSIX) never uploaded: trainer resume state, pickles, nested checkpoints,
#: caches and our own temporary folders. Weights are pushed as safetensors only, so that
#: loading a pushed model never unpickles anything.
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

#: Top-level entries that make up the model itself; remote ones not in a new push are deleted.
LAYOUT_ENTRIES = (BACKBONE_DIR, ADAPTER_DIR, TOKENIZER_DIR, HEAD_NAME)
#: Top-level files of the standard layouts (and of llmrank's config); stale ones are deleted too.
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
#: ``format`` values of a push: ``auto`` (the family's standard layout) or an export format
PUSH_FORMATS = ("auto", *FORMATS)

_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


class HubError(ValueError):
    """A push that cannot go ahead (bad repo id, no token, Hub refused); one line, no token in it."""


@dataclass
class HubSettings:
    """The recipe's ``hub:`` block.

    ``strategy``: ``end`` pushes once after training, ``every_save`` after every checkpoint
    save (each push is one blocking commit of the output folder). ``revision``: a branch
    (created from ``main`` if missing); ``None`` pushes to ``main``. ``format``: ``auto``
    (default: the family's standard layout, see the module docstring), ``sentence-transformers``,
    ``transformers``, ``vllm`` or ``llmrank``. Standard layouts merge LoRA unless ``adapter``
    (a PEFT adapter folder); ``merge_lora`` merges an adapter in the ``llmrank`` layout.
    """

    repo_id: str
    private: bool = False
    strategy: str = "end"
    merge_lora: bool = False
    revision: str | None = None
    format: str = "auto"
    adapter: bool = False

    def __post_init__(self) -> None:
        validate_repo_id(self.repo_id)
        if self.strategy not in STRATEGIES:
            raise HubError(f"hub.strategy {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        if self.format not in PUSH_FORMATS:
            raise HubError(f"hub.format {self.format!r} is not one of {', '.join(PUSH_FORMATS)}")
        if self.adapter and self.merge_lora:
            raise HubError("hub.adapter and hub.merge_lora contradict each other; choose one")

    @classmethod
    def from_any(cls, obj: HubSettings | Mapping[str, Any] | Any) -> HubSettings:
        """Accept a :class:`HubSettings`, a mapping (YAML) or any dataclass with the same fields."""
        if isinstance(obj, HubSettings):
            return obj
        if is_dataclass(obj) and not isinstance(obj, type):
            obj = asdict(obj)
        elif not isinstance(obj, Mapping):
            obj = {f.name: getattr(obj, f.name) for f in fields(cls) if hasattr(obj, f.name)}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise HubError(f"unknown hub setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if not obj.get("repo_id"):
            raise HubError("hub.repo_id is required (e.g. 'your-name/rankt5-base-softmax')")
        return cls(**obj)

    def should_push(self, event: str) -> bool:
        """``event`` is ``"save"`` (a checkpoint was written) or ``"end"`` (training finished)."""
        if event not in ("save", "end"):
            raise ValueError(f"event must be 'save' or 'end', not {event!r}")
        return event == "end" or self.strategy == "every_save"


def validate_repo_id(repo_id: str) -> str:
    """``namespace/name`` with Hub-legal characters, else a one-line :class:`HubError`."""
    parts = str(repo_id).split("/")
    ok = (
        len(parts) == 2
        and all(_REPO_PART.match(p) for p in parts)
        and not any(("--" in p or ".." in p or p.endswith((".", "-")) or p.endswith(".git")) for p in parts)
    )
    if not ok:
        raise HubError(
            f"repo id {repo_id!r} is not 'namespace/name' (letters, digits, '.', '_', '-'; "
            "e.g. 'your-name/rankt5-base-softmax')"
        )
    return repo_id


def resolve_token(token: str | None = None) -> str:
    """The explicit token, else ``HF_TOKEN`` / the login cache; :class:`HubError` if none."""
    if token:
        return token
    from huggingface_hub import get_token

    found = get_token()
    if not found:
        raise HubError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access)")
    return found


# --------------------------------------------------------------------------------- checkpoints
def checkpoint_problems(ckpt_dir: str | os.PathLike) -> list[str]:
    """What a checkpoint folder lacks to be loadable by :func:`llmrank.load_ranker` (empty: fine)."""
    path = Path(ckpt_dir)
    if not path.is_dir():
        return [f"{path} (folder does not exist)"]
    missing = []
    if not (path / CONFIG_NAME).is_file():
        missing.append(CONFIG_NAME)
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
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            if not (adapter / name).is_file():
                missing.append(f"{ADAPTER_DIR}/{name}")
    else:
        missing.append(f"{BACKBONE_DIR}/ or {ADAPTER_DIR}/")
    return missing


def check_checkpoint(ckpt_dir: str | os.PathLike) -> Path:
    """Raise ``FileNotFoundError`` naming every missing piece of the checkpoint layout."""
    missing = checkpoint_problems(ckpt_dir)
    if missing:
        raise FileNotFoundError(
            f"{ckpt_dir} is not a complete llmrank checkpoint; missing: {', '.join(missing)} "
            "(save it with Ranker.save_pretrained / the trainer)"
        )
    return Path(ckpt_dir)


def is_adapter_checkpoint(ckpt_dir: str | os.PathLike) -> bool:
    path = Path(ckpt_dir)
    return (path / ADAPTER_DIR).is_dir() and not (path / BACKBONE_DIR).is_dir()


def upload_files(ckpt_dir: str | os.PathLike, exclude: Iterable[str] = EXCLUDE_PATTERNS) -> list[str]:
    """Relative POSIX paths of the files a push uploads, sorted (see :data:`EXCLUDE_PATTERNS`)."""
    root = Path(ckpt_dir)
    patterns = tuple(exclude)
    out = []
    for file in root.rglob("*"):
        if not file.is_file():
            continue
        rel = file.relative_to(root).as_posix()
        if any(fnmatch.fnmatch(rel, p) for p in patterns):
            continue
        out.append(rel)
    return sorted(out)


# --------------------------------------------------------------------------------- pushing
def push_checkpoint(
    ckpt_dir: str | os.PathLike,
    hub_settings: HubSettings | Mapping[str, Any] | Any,
    token: str | None = None,
    *,
    commit_message: str | None = None,
    endpoint: str | None = None,
    write_card: bool = True,
    card_kwargs: Mapping[str, Any] | None = None,
) -> str:
    """Push an llmrank checkpoint folder to the Hub in one commit; returns the commit URL.

    Steps: validate the settings and the folder, find a token (before any request), export the
    checkpoint to a temporary folder in the layout of ``settings.format`` (``llmrank``: merge LoRA
    there if ``merge_lora`` and the checkpoint is an adapter), (re)write the model card with the
    repo id, create the repo (``exist_ok``) and the branch, then one ``create_commit`` adding every
    file of :func:`upload_files` and deleting stale model files. ``endpoint`` defaults to
    ``HF_ENDPOINT`` / huggingface.co.
    """
    settings = HubSettings.from_any(hub_settings)
    src = check_checkpoint(ckpt_dir)
    secret = resolve_token(token)

    tmp_root: Path | None = None
    try:
        folder = src
        fmt = settings.format
        if fmt == "auto":
            family = json.loads((src / CONFIG_NAME).read_text()).get("family", "")
            fmt = default_format(family) or "llmrank"
        if fmt != "llmrank":
            tmp_root = Path(tempfile.mkdtemp(prefix=".tmp-push-"))
            try:
                folder = export_checkpoint(src, tmp_root / "export", fmt, adapter=settings.adapter, write_card=False)
            except ExportError as exc:
                if settings.format != "auto":
                    raise
                logger.warning("pushing the llmrank layout: the %s export is not exact for this checkpoint (%s)", fmt, exc)
                folder, fmt = src, "llmrank"
        if fmt == "llmrank" and settings.adapter:
            raise HubError("hub.adapter needs a standard format (sentence-transformers, transformers, vllm)")
        if fmt == "llmrank" and settings.merge_lora and is_adapter_checkpoint(src):
            from llmrank.merge import merge_lora

            tmp_root = tmp_root or Path(tempfile.mkdtemp(prefix=".tmp-push-"))
            folder = merge_lora(src, tmp_root / "merged", write_card=False)
        if write_card:
            from llmrank.model_card import write_model_card

            write_model_card(folder, repo_id=settings.repo_id, **dict(card_kwargs or {}))
        return _commit_folder(folder, settings, secret, commit_message=commit_message, endpoint=endpoint)
    finally:
        if tmp_root is not None:
            shutil.rmtree(tmp_root, ignore_errors=True)


def _commit_folder(
    folder: Path, settings: HubSettings, token: str, *, commit_message: str | None, endpoint: str | None
) -> str:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    files = upload_files(folder)
    api = HfApi(endpoint=endpoint, token=token)
    repo = settings.repo_id
    try:
        api.create_repo(repo, private=settings.private, exist_ok=True, repo_type="model")
        if settings.revision and settings.revision != "main":
            api.create_branch(repo, branch=settings.revision, exist_ok=True, repo_type="model")
        remote = set(api.list_repo_files(repo, revision=settings.revision, repo_type="model"))
        ops: list[Any] = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(folder / rel)) for rel in files]
        keep = set(files)
        stale = sorted(name for name in remote if name not in keep and _is_model_file(name))
        ops += [CommitOperationDelete(path_in_repo=name) for name in stale]
        message = commit_message or _default_message(folder)
        info = api.create_commit(
            repo, ops, commit_message=message, revision=settings.revision, repo_type="model"
        )
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        hint = {401: "the token is invalid or expired", 403: "the token lacks write access to this namespace"}
        detail = hint.get(status) or _first_line(str(exc))
        raise HubError(f"push to {repo} failed (HTTP {status}): {detail}") from None
    except Exception as exc:  # connection errors (httpx) and OS errors: one line, no traceback
        if not (isinstance(exc, OSError) or type(exc).__module__.split(".")[0].startswith("httpx")):
            raise
        raise HubError(f"push to {repo} failed: cannot reach {api.endpoint} ({type(exc).__name__})") from None
    logger.info("pushed %d files to %s (%d stale removed)", len(files), repo, len(stale))
    return str(info.commit_url) if hasattr(info, "commit_url") else str(info)


def _is_model_file(name: str) -> bool:
    """Part of some model layout (llmrank's or a standard one), so stale when not pushed again."""
    if name.split("/", 1)[0] in LAYOUT_ENTRIES:
        return True
    return "/" not in name and any(fnmatch.fnmatch(name, p) for p in STANDARD_LAYOUT_PATTERNS)


def _default_message(folder: Path) -> str:
    if (folder / EXPORT_META).is_file():
        try:
            meta = json.loads((folder / EXPORT_META).read_text())
            kind = "PEFT adapter" if meta.get("adapter") else f"{meta.get('format')} model"
            return f"llmrank: upload {meta.get('family', 'ranker')} {kind}"
        except (OSError, ValueError):
            return "llmrank: upload ranker"
    try:
        meta = json.loads((folder / CONFIG_NAME).read_text())
        kind = "LoRA adapter" if (folder / ADAPTER_DIR).is_dir() and not (folder / BACKBONE_DIR).is_dir() else "model"
        return f"llmrank: upload {meta.get('family', 'ranker')} {kind}"
    except (OSError, ValueError):
        return "llmrank: upload ranker"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "unknown error"
