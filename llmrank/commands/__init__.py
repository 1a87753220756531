"""Shared helpers of the `llmrank` subcommands: the user-error type, argparse value types and
checks of output paths that run before any model is loaded (so a long job is not lost at its end
because ``--out`` turned out to be a folder)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


class CLIError(Exception):
    """An error the user can fix; printed as one line without a traceback."""


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``--batch-size 0`` would loop forever or divide by zero)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _first_existing_parent(path: Path) -> Path:
    parent = path.parent if str(path.parent) else Path(".")
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def _check_parent(path: Path, flag: str) -> None:
    parent = _first_existing_parent(path)
    if not parent.is_dir():
        raise CLIError(f"{flag} {path}: {parent} is a file, not a folder; choose a path inside a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"{flag} {path}: folder {parent} is not writable; choose another path")


def check_output_file(path: str | os.PathLike[str] | None, flag: str) -> None:
    """``path`` can be written as a file: not a folder, and its nearest existing parent is a
    writable folder (missing folders are created at write time)."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise CLIError(f"{flag} {p} is a folder; give a file path (e.g. {p / 'run.trec'})")
    _check_parent(p, flag)


def check_output_dir(path: str | os.PathLike[str] | None, flag: str) -> None:
    """``path`` can be used as an output folder: not an existing file, and creatable."""
    if path is None:
        return
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise CLIError(f"{flag} {p} is a file; give a folder path (it is created if missing)")
    if not p.exists():
        _check_parent(p, flag)


def check_input_file(path: str | os.PathLike[str] | None, flag: str) -> None:
    """``path`` is an existing regular file."""
    if path is None:
        return
    p = Path(path)
    if not p.exists():
        raise CLIError(f"{flag} {p} does not exist")
    if p.is_dir():
        raise CLIError(f"{flag} {p} is a directory, expected a file")


#: endings that mark a file argument (a Pyserini topics/qrels name has none of them)
FILE_SUFFIXES = (".txt", ".tsv", ".trec", ".qrels", ".run", ".json", ".jsonl", ".csv", ".gz")


def looks_like_path(value: str) -> bool:
    """Whether a value that may also be a Pyserini name (qrels, topics) is meant as a file."""
    return "/" in value or os.sep in value or value.endswith(FILE_SUFFIXES) or Path(value).exists()


def check_model_arg(model: str, flag: str = "--model") -> None:
    """A ``--model`` value is an existing folder or looks like a Hub id ``namespace/name``.

    Paths (``./x``, ``/x``, ``~/x``, ``a/b/c``) that do not exist fail here, before anything is
    loaded. With ``HF_HUB_OFFLINE`` set, a Hub id that is not in the local cache fails at once
    with the fix, instead of an error from deep inside ``from_pretrained``."""
    p = Path(model).expanduser()
    if p.exists():
        if not p.is_dir():
            raise CLIError(f"{flag} {model} is a file; give a checkpoint folder or a Hub id")
        return
    looks_like_path = model.startswith((".", "/", "~")) or model.count("/") > 1
    if looks_like_path:
        raise CLIError(f"{flag} {model} does not exist (no such folder)")
    if _offline() and not _in_hub_cache(model):
        raise CLIError(
            f"{flag} {model}: not a local folder and not in the Hugging Face cache, and HF_HUB_OFFLINE is set; "
            "give a checkpoint folder, or download the model first"
        )


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _in_hub_cache(repo_id: str) -> bool:
    """Whether some snapshot of ``repo_id`` is in the local Hub cache (no network)."""
    try:
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return True
    if not Path(HF_HUB_CACHE).is_dir():
        return False
    try:
        cache = scan_cache_dir(HF_HUB_CACHE)
    except Exception:  # noqa: BLE001 - a damaged cache: let the loader report it
        return True
    return any(repo.repo_id == repo_id and repo.repo_type == "model" for repo in cache.repos)
