"""Share checkpoints on the Hugging Face Hub: validate, export, card, one commit.

:func:`push_checkpoint` is what ``llmrank push`` and the trainer call. The trainer is driven by
``TrainingArguments``' own hub fields (``push_to_hub``, ``hub_model_id``, ``hub_strategy`` ``end`` |
``every_save``, ``hub_private_repo``, ``hub_revision``, ``hub_token``) through
:class:`HubPushMixin`, which routes ``Trainer``'s push hooks here, as TRL's trainers route
``create_model_card`` to their own cards.

By default (``format="auto"``) the checkpoint is first exported (:mod:`llmrank.export`) to the
standard layout of its family, which other tools load: a sentence-transformers / transformers
sequence-classification folder for cross-encoders, a stock T5 or causal LM for seq2seq and FIRST
(LoRA merged, or a PEFT adapter with ``adapter``). A checkpoint that cannot be exported exactly
(e.g. ``cls`` pooling on BERT) is pushed in llmrank's own layout with a warning naming why;
``format="llmrank"`` asks for that layout, and an explicit standard format that cannot be
written is an error.

A push is a single Hub commit (``HfApi.create_commit``): either every file lands, or none does,
so a failed push never leaves a half-updated model that a later push could not fix. Stale model
files of any layout (say ``adapter/`` after pushing a merged model over an adapter one) are
deleted in that same commit, so the repo always loads as what was pushed last. Not
``HfApi.upload_folder``: with ``hf_xet`` (huggingface_hub >= 1.x) it commits in batches and
retries a failed commit of more than 20 files in several smaller commits, so a failed push
could leave a half-updated repo.

The token comes from ``token=`` (``training.hub_token``), else ``HF_TOKEN`` or the
``hf auth login`` cache (:func:`huggingface_hub.get_token`). It is handed to ``HfApi`` and never
printed, logged or written to a file (``training_args.bin`` is saved without it).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError

from llmrank.checkpoint_layout import (
    CONFIG_NAME,
    EXPORT_META,
    check_checkpoint,
    is_adapter_checkpoint,
    is_model_file,
    shareable_files,
)
from llmrank.export import FORMATS, ExportError, default_format, export_checkpoint
from llmrank.merge import merge_lora as merge_lora_into
from llmrank.model_card import write_model_card

logger = logging.getLogger(__name__)

#: ``training.hub_strategy`` values llmrank pushes with (a model, never trainer resume state)
STRATEGIES = ("end", "every_save")
#: ``format`` values of a push: ``auto`` (the family's standard layout) or an export format
PUSH_FORMATS = ("auto", *FORMATS)

_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


class HubError(ValueError):
    """A push that cannot go ahead (bad repo id, no token, Hub refused); one line, no token in it."""


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
    found = get_token()
    if not found:
        raise HubError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access)")
    return found


# --------------------------------------------------------------------------------- pushing
def push_checkpoint(
    ckpt_dir: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    format: str = "auto",
    adapter: bool = False,
    merge_lora: bool = False,
    commit_message: str | None = None,
    endpoint: str | None = None,
    write_card: bool = True,
    card_kwargs: Mapping[str, Any] | None = None,
) -> str:
    """Push an llmrank checkpoint folder to ``repo_id`` in one commit; returns the commit URL.

    Steps: validate the arguments and the folder, find a token (before any request), export the
    checkpoint to a temporary folder in the layout ``format`` (``auto``: the family's standard
    layout; standard layouts merge LoRA unless ``adapter``, a PEFT adapter folder; ``llmrank`` with
    ``merge_lora`` merges an adapter checkpoint there), (re)write the model card with the repo id,
    create the repo (``exist_ok``; ``private`` applies to a new repo) and the branch ``revision``
    (from ``main``), then one ``create_commit`` adding every shareable file and deleting stale
    model files. ``endpoint`` defaults to ``HF_ENDPOINT`` / huggingface.co.
    """
    validate_repo_id(repo_id)
    if format not in PUSH_FORMATS:
        raise HubError(f"push format {format!r} is not one of {', '.join(PUSH_FORMATS)}")
    if adapter and merge_lora:
        raise HubError("adapter and merge_lora contradict each other; choose one")
    src = check_checkpoint(ckpt_dir)
    secret = resolve_token(token)

    tmp_root = Path(tempfile.mkdtemp(prefix=".tmp-push-"))
    try:
        folder, fmt = src, format
        if fmt == "auto":
            fmt = default_format(json.loads((src / CONFIG_NAME).read_text()).get("family", "")) or "llmrank"
        if fmt != "llmrank":
            try:
                folder = export_checkpoint(src, tmp_root / "export", fmt, adapter=adapter, write_card=False)
            except ExportError as exc:
                if format != "auto":
                    raise
                logger.warning("pushing the llmrank layout: the %s export is not exact for this checkpoint (%s)", fmt, exc)
                folder, fmt = src, "llmrank"
        if fmt == "llmrank" and adapter:
            raise HubError("adapter needs a standard format (sentence-transformers, transformers, vllm)")
        if fmt == "llmrank" and merge_lora and is_adapter_checkpoint(src):
            folder = merge_lora_into(src, tmp_root / "merged", write_card=False)
        if write_card:
            write_model_card(folder, repo_id=repo_id, **dict(card_kwargs or {}))
        return _commit_folder(folder, repo_id, secret, private=private, revision=revision,
                              message=commit_message or _default_message(folder), endpoint=endpoint)  # fmt: skip
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)


def _commit_folder(
    folder: Path, repo: str, token: str, *, private: bool | None, revision: str | None, message: str, endpoint: str | None
) -> str:
    files = shareable_files(folder)
    api = HfApi(endpoint=endpoint, token=token)
    try:
        api.create_repo(repo, private=private, exist_ok=True, repo_type="model")
        if revision and revision != "main":
            api.create_branch(repo, branch=revision, exist_ok=True, repo_type="model")
        remote = api.list_repo_files(repo, revision=revision, repo_type="model")
        stale = sorted(name for name in set(remote) - set(files) if is_model_file(name))
        ops: list[Any] = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(folder / rel)) for rel in files]
        ops += [CommitOperationDelete(path_in_repo=name) for name in stale]
        info = api.create_commit(repo, ops, commit_message=message, revision=revision, repo_type="model")
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        hint = {401: "the token is invalid or expired", 403: "the token lacks write access to this namespace"}
        detail = hint.get(status) or (str(exc).strip().splitlines() or ["unknown error"])[0]
        raise HubError(f"push to {repo} failed (HTTP {status}): {detail}") from None
    except Exception as exc:  # connection errors (httpx) and OS errors: one line, no traceback
        if not (isinstance(exc, OSError) or type(exc).__module__.split(".")[0].startswith("httpx")):
            raise
        raise HubError(f"push to {repo} failed: cannot reach {api.endpoint} ({type(exc).__name__})") from None
    logger.info("pushed %d files to %s (%d stale removed)", len(files), repo, len(stale))
    return str(info.commit_url) if hasattr(info, "commit_url") else str(info)


def _default_message(folder: Path) -> str:
    exported = (folder / EXPORT_META).is_file()
    try:
        meta = json.loads((folder / (EXPORT_META if exported else CONFIG_NAME)).read_text())
    except (OSError, ValueError):
        return "llmrank: upload ranker"
    if exported:
        kind = "PEFT adapter" if meta.get("adapter") else f"{meta.get('format')} model"
    else:
        kind = "LoRA adapter" if is_adapter_checkpoint(folder) else "model"
    return f"llmrank: upload {meta.get('family', 'ranker')} {kind}"


# --------------------------------------------------------------------------------- training
def args_without_token(args: Any) -> Any:
    """A shallow copy of ``TrainingArguments`` without ``hub_token``, for ``training_args.bin``."""
    clean = copy.copy(args)
    clean.hub_token = None
    return clean


class HubPushMixin:
    """``Trainer`` hooks that push with :func:`push_checkpoint` (put before ``Trainer`` in the bases).

    With ``args.push_to_hub``, ``Trainer`` calls :meth:`init_hf_repo` when built (here: check the
    repo id and find the token, before training starts; the repo is created by the first push),
    :meth:`_push_from_checkpoint` after each checkpoint save (``hub_strategy: every_save``) and
    pushes from :meth:`save_model` (the final model). Each push is one blocking commit of the folder
    in its family's standard layout, with llmrank's model card (also :meth:`create_model_card`).
    """

    args: Any
    recipe: Any

    def init_hf_repo(self, token: str | None = None, private: bool | None = None) -> None:
        self.hub_model_id = validate_repo_id(self.args.hub_model_id)
        if self.is_world_process_zero():
            resolve_token(token or self.args.hub_token)

    def create_model_card(self, **kwargs: Any) -> None:
        if self.is_world_process_zero():
            write_model_card(self.args.output_dir, recipe=self.recipe, repo_id=self.args.hub_model_id)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        super().save_model(output_dir, _internal_call=True)  # type: ignore[misc]  # Trainer would push_to_hub
        if self.args.push_to_hub and not _internal_call and self.is_world_process_zero():
            self._push(output_dir or self.args.output_dir, None)

    def push_to_hub(self, commit_message: str | None = None, blocking: bool = True, token: str | None = None,
                    revision: str | None = None, private: bool | None = None, **kwargs: Any) -> str | None:  # fmt: skip
        self.save_model(_internal_call=True)
        if not self.is_world_process_zero():
            return None
        return self._push(self.args.output_dir, commit_message, token=token, revision=revision, private=private)

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        if self.is_world_process_zero() and self.args.hub_strategy == "every_save":
            self._push(checkpoint_folder, f"llmrank: checkpoint at step {self.state.global_step}")

    def _push(self, folder: str, message: str | None, *, token: str | None = None, revision: str | None = None,
              private: bool | None = None) -> str:  # fmt: skip
        args = self.args
        return push_checkpoint(
            folder, args.hub_model_id, token=token or args.hub_token, revision=revision or args.hub_revision,
            private=args.hub_private_repo if private is None else private, commit_message=message,
        )  # fmt: skip
