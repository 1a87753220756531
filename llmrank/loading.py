"""``load_ranker``: an llmrank checkpoint or a published reranker, local folder or Hub id -> a Ranker.

What is accepted (see ``docs/loading.md``):

* an llmrank checkpoint (``llmrank_config.json``), as saved by training;
* a one-label ``*ForSequenceClassification`` checkpoint, scored by its own head (``seq-cls``);
* a PEFT adapter repo (``adapter_config.json`` + its base model), e.g. RankLLaMA;
* monoT5 / RankT5 (``seq2seq``), FIRST causal LMs (``first``), and -- where the family is
  installed -- yes/no LLM rerankers (``yes-no``, by template name).

The family is detected from the config files (:func:`llmrank.rankers.published.detect_family`);
``family=`` / ``template=`` / ``options=`` force it. ``trust_remote_code`` comes only from the
caller (default off): nothing read from the checkpoint can turn it on. ``revision`` pins the
Hub snapshot of the model, its tokenizer and (for adapters) what the adapter's config pins.

Errors are :class:`~llmrank.rankers.base.ModelLoadError` (a ``ValueError``) with one line naming
the model id or file and what to do; with ``HF_HUB_OFFLINE=1`` a model missing from the local
cache fails at once instead of retrying.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from llmrank.rankers import base as _base
from llmrank.rankers.base import CONFIG_NAME, EXPORT_META, ModelLoadError, Ranker, RankerSettings, family_class
from llmrank.rankers.prompts import get_template
from llmrank.rankers.published import Detected, SequenceClassificationRanker, detect_family

ADAPTER_CONFIG = "adapter_config.json"
MODEL_CONFIG = "config.json"


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep == "\\" and "\\" in name


def _offline() -> bool:
    return bool(constants.HF_HUB_OFFLINE)


def hub_file(repo_id: str, filename: str, revision: str | None = None) -> Path | None:
    """A file of a Hub repo (downloaded or from the cache), or None when the repo has no such file.

    An unknown repo, an unknown revision, or a repo absent from the cache while offline is a
    :class:`ModelLoadError` naming the id and the fix."""
    at = f" at revision {revision!r}" if revision else ""
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision))
    except HFValidationError:
        raise ModelLoadError(
            f"model {repo_id!r} is neither an existing folder nor a valid Hugging Face Hub id ('namespace/name')"
        ) from None
    except GatedRepoError:
        raise ModelLoadError(
            f"model {repo_id!r} is gated on the Hugging Face Hub: accept its terms on the model page and log in "
            "(`hf auth login`), or give a local folder"
        ) from None
    except RepositoryNotFoundError:
        raise ModelLoadError(
            f"model {repo_id!r} not found on the Hugging Face Hub (or private: log in with `hf auth login`); "
            "check the id, or give a local folder"
        ) from None
    except RevisionNotFoundError:
        raise ModelLoadError(f"model {repo_id!r} has no revision {revision!r}; give an existing branch, tag or commit") from None
    except LocalEntryNotFoundError:
        if _offline():
            # offline with the repo cached but without this (optional) file -> treat as absent
            if _cached_snapshot(repo_id, revision) is not None:
                return None
            raise ModelLoadError(
                f"model {repo_id!r}{at} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: "
                "download it first (`hf download " + repo_id + "`) or give a local folder"
            ) from None
        raise ModelLoadError(
            f"model {repo_id!r}{at}: the Hugging Face Hub is unreachable and the model is not cached; "
            "check the network, or give a local folder"
        ) from None
    except EntryNotFoundError:  # after LocalEntryNotFoundError, its subclass
        return None
    except (HfHubHTTPError, OSError) as exc:
        raise ModelLoadError(
            f"model {repo_id!r}{at}: download failed ({str(exc).splitlines()[0]}); check the id and the network, "
            "or give a local folder"
        ) from None


def _cached_snapshot(repo_id: str, revision: str | None) -> Path | None:
    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except Exception:  # not cached (any flavour of "not found locally")
        return None


def _config_file(name: str, filename: str, revision: str | None) -> Path | None:
    if Path(name).expanduser().is_dir():
        file = Path(name).expanduser() / filename
        return file if file.is_file() else None
    return hub_file(name, filename, revision)


def _read_json(file: Path | None) -> dict[str, Any] | None:
    if file is None:
        return None
    data = _base.read_json_file(file)
    if not isinstance(data, dict):
        raise ModelLoadError(f"{file}: expected a JSON object")
    return data


def _check_source(name: str) -> None:
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"model {name!r} is a file; give the model folder (with config.json) or a Hub id")
        return
    if _looks_local(name):
        raise FileNotFoundError(
            f"model folder {name!r} does not exist; give a local folder with config.json or a Hub id like 'namespace/name'"
        )


def load_ranker(
    name_or_path: str | os.PathLike,
    *,
    family: str | None = None,
    template: str | None = None,
    options: dict[str, Any] | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    **overrides: Any,
) -> Ranker:
    """A ranker from an llmrank checkpoint or a published reranker (local folder or Hub id).

    ``family`` / ``template`` / ``options`` force the family, the prompt template (yes/no LLMs,
    FIRST: ``template`` sets ``options.template``) and family options instead of detecting them;
    ``revision`` pins the Hub revision; ``trust_remote_code`` (default False) is the only way to run
    code shipped with a model. Other keyword arguments override :class:`RankerSettings` fields
    (``max_length``, ``dtype``, ...)."""
    name = str(name_or_path)
    _check_source(name)
    opts = dict(options or {})
    if template is not None:
        opts["template"] = template
    local = Path(name).expanduser()

    # -- an llmrank checkpoint (local, or a Hub repo with llmrank_config.json) --
    own = local / CONFIG_NAME if local.is_dir() else hub_file(name, CONFIG_NAME, revision)
    if own is not None and own.is_file():
        folder = own.parent
        if not local.is_dir():
            folder = _snapshot(name, revision)
        if family is not None:
            saved = _base.read_checkpoint_config(folder)["family"]
            if saved != family:
                raise ModelLoadError(
                    f"{folder / CONFIG_NAME}: this llmrank checkpoint is family {saved!r}, not {family!r}; drop --family"
                )
        if opts:
            overrides["options"] = opts
        return _base.load_llmrank_checkpoint(folder, trust_remote_code=trust_remote_code, **overrides)

    # -- a published format --
    if local.is_dir():
        _base.check_weight_files(local)
    adapter_config = _read_json(_config_file(name, ADAPTER_CONFIG, revision))
    model_name = name
    if adapter_config is not None:
        model_name = adapter_config.get("base_model_name_or_path") or ""
        if not model_name:
            raise ModelLoadError(f"{name}/{ADAPTER_CONFIG}: no base_model_name_or_path, so the base model is unknown")
        _check_source(model_name)
    base_revision = (adapter_config or {}).get("revision") if adapter_config is not None else revision
    config = _read_json(_config_file(model_name, MODEL_CONFIG, base_revision))
    export_meta = _read_json(_config_file(name, EXPORT_META, revision))
    exported = _exported_family(export_meta)
    if family is not None:
        detected = Detected(family, {}, "forced")
    elif exported is not None:
        detected = exported
    else:
        registered = _registered_families()
        detected = detect_family(name, config, adapter_config, registered)
    settings = RankerSettings(
        family=detected.family,
        model_name_or_path=model_name,
        trust_remote_code=trust_remote_code,
        revision=base_revision,
        options={**detected.options, **opts},
    )
    if detected.family == "seq-cls" and "template" in settings.options:
        settings.options["input_format"] = settings.options.pop("template")
    if adapter_config is not None and detected.family == "seq-cls":
        settings.options["adapter"] = name
        if revision:
            settings.options["adapter_revision"] = revision
        # the tokenizer ships with the adapter when its authors saved one there
        if _config_file(name, "tokenizer_config.json", revision) is not None:
            settings.tokenizer_name_or_path = name
    elif adapter_config is not None:
        raise ModelLoadError(
            f"{name}: a {adapter_config.get('task_type')} adapter; llmrank loads published SEQ_CLS adapters "
            "(RankLLaMA style) -- merge this one into its base model first (peft merge_and_unload) and load that folder"
        )
    if exported is not None and detected is exported:
        # an llmrank export scores up to the length it was trained and exported with
        settings.max_length = int((export_meta.get("settings") or {}).get("max_length") or settings.max_length)
    elif settings.family == "yes-no" and "max_length" not in overrides:
        # score a published yes/no reranker the way its card does, up to its authors' length
        settings.max_length = get_template(settings.options.get("template")).default_max_length or settings.max_length
    for key, value in overrides.items():
        if key not in RankerSettings.__dataclass_fields__:
            raise ValueError(f"unknown ranker setting {key!r}; known: {', '.join(RankerSettings.__dataclass_fields__)}")
        setattr(settings, key, value)
    cls = family_class(settings.family)
    try:
        if issubclass(cls, SequenceClassificationRanker):
            return cls.load_strict(settings)
        return cls.build(settings)
    except OSError as exc:  # transformers/huggingface_hub: missing weights, download failures
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(f"model {name!r} ({settings.family}): {first}") from None


def device_ranker(name_or_path: str, **kwargs: Any) -> Ranker:
    """:func:`load_ranker`, moved to the GPU when one is available (teacher scoring, ``llmrank score``)."""
    ranker = load_ranker(name_or_path, **kwargs)
    if torch.cuda.is_available():
        ranker = ranker.to("cuda")
    return ranker


def _exported_family(meta: Any) -> Detected | None:
    """The family recorded by ``llmrank export`` for layouts a config cannot tell apart (a causal LM
    scored by yes/no logits or by FIRST's identifiers). Data only: nothing in it is executed."""
    if not isinstance(meta, dict) or meta.get("family") not in ("yes-no", "first") or meta.get("adapter"):
        return None
    options = (meta.get("settings") or {}).get("options") or {}
    keep = ("template",) if meta["family"] == "yes-no" else ("template", "window_size", "stride")
    return Detected(meta["family"], {k: options[k] for k in keep if k in options}, f"{EXPORT_META} of llmrank export")


def _registered_families() -> list[str]:
    # importing llmrank.rankers.base (above) ran the package's __init__, which registers every family
    return sorted(_base._FAMILIES)


def _snapshot(repo_id: str, revision: str | None) -> Path:
    if _offline():
        cached = _cached_snapshot(repo_id, revision)
        if cached is None:
            raise ModelLoadError(
                f"model {repo_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: "
                f"download it first (`hf download {repo_id}`) or give a local folder"
            )
        return cached
    try:
        return Path(snapshot_download(repo_id, revision=revision))
    except Exception as exc:  # network, permissions: one line with the id
        raise ModelLoadError(f"model {repo_id!r}: download failed ({str(exc).splitlines()[0]})") from None
