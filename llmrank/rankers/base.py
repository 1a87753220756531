"""The Ranker contract shared by every family.

A ranker turns a batch of lists into a differentiable score tensor ``[B, n]`` (training) and
reranks a query's candidates (inference). Losses never know which family produced the scores;
families never know which loss is used.

Checkpoint layout written by :meth:`Ranker.save_pretrained` (and read by :func:`load_ranker`)::

    llmrank_config.json   family + RankerSettings (+ llmrank version)
    backbone/             full backbone weights (safetensors)      -- full fine-tune or merged
    adapter/              PEFT adapter (adapter_config.json + adapter_model.safetensors) -- LoRA
    head.safetensors      trainable parameters outside the backbone (score heads), if any
    tokenizer/            the tokenizer
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

# the checkpoint layout names; re-exported for code that imports them from here
from llmrank.checkpoint_layout import ADAPTER_DIR, BACKBONE_DIR, CONFIG_NAME, EXPORT_META, HEAD_NAME, TOKENIZER_DIR  # noqa: F401
from llmrank.data.record import STAGES, Doc, RankingList
from llmrank.io_utils import staged_dir

#: Keys of a collated batch that are training targets, not model inputs.
TARGET_KEYS = ("labels", "list_mask", "teacher_scores", "teacher_ranks", "stages")


def stage_ids(lists: Sequence[RankingList], n: int) -> torch.Tensor | None:
    """``[B, n]`` long stage ids (index in :data:`~llmrank.data.record.STAGES`, −1 = padding) of a
    batch whose documents carry a ``stage``, for ``targets["stages"]``; None when none does.  Every
    family's ``collate`` adds it, so any objective term can be scoped to sample stages."""
    if not any(d.stage is not None for lst in lists for d in lst.docs):
        return None
    out = torch.full((len(lists), n), -1, dtype=torch.long)
    for b, lst in enumerate(lists):
        for i, doc in enumerate(lst.docs):
            if doc.stage is not None:
                out[b, i] = STAGES.index(doc.stage)
    return out


@dataclass
class LoraSettings:
    """PEFT LoRA settings; ``target_modules=None`` picks the family's sensible default."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | None = None


@dataclass
class RankerSettings:
    """Everything needed to rebuild a ranker; saved verbatim in ``llmrank_config.json``."""

    family: str
    model_name_or_path: str
    max_length: int = 512
    query_max_length: int = 64
    dtype: str = "float32"  # float32 | bfloat16 | float16 | auto
    attn_implementation: str | None = None
    #: run Python shipped with the model (``auto_map``). Only ever from the caller (function
    #: argument, CLI flag, the user's own recipe): never read back from a saved checkpoint.
    trust_remote_code: bool = False
    #: Hub revision (branch, tag or commit) of ``model_name_or_path`` and of its tokenizer
    revision: str | None = None
    lora: LoraSettings | None = None
    #: tokenizer folder or Hub id when it is not next to the model (None: ``model_name_or_path``)
    tokenizer_name_or_path: str | None = None
    # family-specific options, e.g. {"score_token": "<extra_id_10>", "mode": "rankt5"}
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> RankerSettings:
        obj = dict(obj)
        lora = obj.pop("lora", None)
        return cls(**obj, lora=LoraSettings(**lora) if lora else None)

    @classmethod
    def from_checkpoint(cls, obj: dict[str, Any], where: str, *, trust_remote_code: bool = False) -> RankerSettings:
        """Settings read from a saved ``llmrank_config.json``. ``trust_remote_code`` in the file is
        ignored (a downloaded file must not decide to run code): it is the caller's argument."""
        if not isinstance(obj, dict) or not isinstance(obj.get("family"), str) or "model_name_or_path" not in obj:
            raise ModelLoadError(f"{where}: 'settings' must be a mapping with 'family' and 'model_name_or_path'")
        obj = {k: v for k, v in obj.items() if k != "trust_remote_code"}
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise ModelLoadError(
                f"{where}: unknown settings {', '.join(unknown)} (saved by a newer llmrank? upgrade llmrank)"
            )
        lora = obj.pop("lora", None)
        try:
            return cls(**obj, lora=LoraSettings(**lora) if lora else None, trust_remote_code=trust_remote_code)
        except TypeError as exc:
            raise ModelLoadError(f"{where}: bad 'lora' settings ({exc})") from None

    def hub_kwargs(self) -> dict[str, Any]:
        """``trust_remote_code`` and ``revision`` for every ``from_pretrained`` of the model/tokenizer."""
        kwargs: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
        if self.revision:
            kwargs["revision"] = self.revision
        return kwargs

    def tokenizer_kwargs(self) -> dict[str, Any]:
        """``AutoTokenizer.from_pretrained`` kwargs; the revision pins the tokenizer only when it
        comes from the model's own repo."""
        kwargs = self.hub_kwargs()
        if self.tokenizer_name_or_path and self.tokenizer_name_or_path != self.model_name_or_path:
            kwargs.pop("revision", None)
        return kwargs


class ModelLoadError(ValueError):
    """A model or checkpoint that cannot be loaded: the message is one line naming the model id or
    file and what to do (a ``ValueError``, so the CLI prints it without a traceback)."""


@dataclass
class RankerOutput:
    """What a ranker's forward returns.

    ``scores``: ``[B, n]`` float32, entries where ``mask`` is False are meaningless.
    ``lm_loss``: token-mean LM loss of the target (FIRST); ``logprobs`` / ``ref_logprobs``:
    ``[B, n]`` log-probabilities of each item under the policy / frozen reference (LiPO-λ).
    """

    scores: torch.Tensor
    mask: torch.Tensor
    lm_loss: torch.Tensor | None = None
    logprobs: torch.Tensor | None = None
    ref_logprobs: torch.Tensor | None = None


def torch_dtype(name: str) -> torch.dtype | str:
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name == "auto":
        return "auto"
    if name not in table:
        raise ValueError(f"dtype {name!r} is not one of float32, bfloat16, float16, auto")
    return table[name]


def check_model_path(name_or_path: str) -> None:
    """Fail early, with the fix, when a local-looking path does not exist."""
    looks_local = name_or_path.startswith((".", "/", "~")) or os.sep in name_or_path.strip("/").split("/", 1)[-1]
    if looks_local and not Path(name_or_path).expanduser().exists():
        raise FileNotFoundError(
            f"model path {name_or_path!r} does not exist; give a local folder with config.json "
            "or a Hugging Face Hub id like 'namespace/name'"
        )


def from_pretrained_kwargs(settings: RankerSettings) -> dict[str, Any]:
    """Keyword arguments for ``AutoModel*.from_pretrained`` from the settings (dtype, attention
    implementation, ``revision``, ``trust_remote_code``, off by default)."""
    kwargs: dict[str, Any] = {"dtype": torch_dtype(settings.dtype), **settings.hub_kwargs()}
    if settings.attn_implementation:
        kwargs["attn_implementation"] = settings.attn_implementation
    return kwargs


_FAMILIES: dict[str, type[Ranker]] = {}


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Run a block with ``module`` in eval mode (no dropout), restoring its train/eval mode after."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


#: the device types ``torch.autocast`` accepts that a ranker runs on
_AUTOCAST_DEVICES = ("cpu", "cuda", "xpu", "mps")


def autocast_off(like: torch.Tensor) -> contextlib.AbstractContextManager:
    """``torch.autocast`` switched off on ``like``'s device, for the last, cheap step of a score:
    autocast would run it in bf16/fp16 and round every score to about 3 significant digits, so
    neighbours in a ranking tie and the evaluation breaks the ties by document id."""
    device = like.device.type
    return torch.autocast(device, enabled=False) if device in _AUTOCAST_DEVICES else contextlib.nullcontext()


def float32_head(head: nn.Linear, states: torch.Tensor) -> torch.Tensor:
    """``head(states)`` with the head's float32 weights even under mixed precision (see
    :func:`autocast_off`), squeezed to one score per row."""
    with autocast_off(states):
        return head(states.to(head.weight.dtype)).squeeze(-1)


def register_family(name: str):
    """Class decorator: make a Ranker subclass available under ``family: name`` in recipes."""

    def wrap(cls: type[Ranker]) -> type[Ranker]:
        cls.family = name
        _FAMILIES[name] = cls
        return cls

    return wrap


def family_class(name: str) -> type[Ranker]:
    # no import needed: importing this module ran llmrank/rankers/__init__.py, which imports (and
    # so registers) every built-in family
    if name not in _FAMILIES:
        raise ValueError(f"unknown ranker family {name!r}; known: {', '.join(sorted(_FAMILIES))}")
    return _FAMILIES[name]


class Ranker(nn.Module):
    """Base class: subclasses implement ``load_backbone``, ``collate`` and ``forward``."""

    family: ClassVar[str] = "base"
    #: BibTeX of the paper(s) whose scoring the family implements (the model card cites it); one entry per line
    citation: ClassVar[str | None] = None
    #: Trainer must divide the loss by gradient-accumulation steps itself: our losses are means.
    accepts_loss_kwargs: ClassVar[bool] = False
    #: LoRA target modules used when the recipe gives none.
    default_lora_targets: ClassVar[list[str]] = ["q_proj", "k_proj", "v_proj", "o_proj"]
    #: options describing how the base model was assembled (e.g. a published adapter merged into
    #: it) that no longer apply to a saved ``backbone/``, which already holds the result
    merged_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, backbone: nn.Module, tokenizer: Any, settings: RankerSettings) -> None:
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.settings = settings

    # ----------------------------------------------------------------------------- building
    @classmethod
    def load_backbone(cls, settings: RankerSettings) -> tuple[nn.Module, Any]:
        """Load (backbone, tokenizer) from ``settings.model_name_or_path``."""
        raise NotImplementedError

    @classmethod
    def build(cls, settings: RankerSettings) -> Ranker:
        """A fresh ranker from a base model (Hub id or local path), with LoRA if asked."""
        check_model_path(settings.model_name_or_path)
        backbone, tokenizer = cls.load_backbone(settings)
        ranker = cls(backbone, tokenizer, settings)
        if settings.lora is not None:
            ranker.apply_lora(settings.lora)
        return ranker

    def apply_lora(self, lora: LoraSettings) -> None:
        # peft/transformers load on first use: importing the families stays torch-only
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules or self.lora_targets(),
        )
        self.backbone = get_peft_model(self.backbone, config)

    @classmethod
    def provides_logprobs(cls, settings: RankerSettings) -> bool:
        """Whether this family returns policy and reference log-probabilities (LiPO-λ) for ``settings``;
        score-only families do not."""
        return False

    def lora_targets(self) -> list[str]:
        """LoRA target modules used when the recipe gives none (families may look at the backbone)."""
        return list(self.default_lora_targets)

    @property
    def _no_split_modules(self) -> list[str] | None:
        """The backbone's layer classes that must stay whole (``LlamaDecoderLayer``...): Accelerate's
        FSDP ``TRANSFORMER_BASED_WRAP`` without a layer class reads this attribute of the model it
        wraps, i.e. of the ranker; without it the whole ranker would be one FSDP unit."""
        modules = getattr(self.backbone, "_no_split_modules", None)  # a PeftModel forwards it
        return list(modules) if modules else None

    @property
    def is_peft(self) -> bool:
        # peft/transformers load on first use: importing the families stays torch-only
        from peft import PeftModel

        return isinstance(self.backbone, PeftModel)

    def head_parameters(self) -> dict[str, torch.Tensor]:
        """Parameters outside the backbone (score heads), saved to ``head.safetensors``."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    # ----------------------------------------------------------------------------- training
    def collate(self, lists: Sequence[RankingList]) -> dict[str, torch.Tensor]:
        """Model inputs plus the targets in :data:`TARGET_KEYS` for a batch of lists."""
        raise NotImplementedError

    def forward(self, **inputs: torch.Tensor) -> RankerOutput:  # type: ignore[override]
        raise NotImplementedError

    def activation_checkpointing_enable(
        self, activation_checkpointing_kwargs: dict | None = None, every_n_layers: int = 1, offload: bool = False
    ) -> None:
        """Activation (gradient) checkpointing of the backbone; what ``Trainer`` calls for
        ``gradient_checkpointing: true`` (transformers >= 5.2 name; older ones call the alias below)."""
        kwargs = activation_checkpointing_kwargs or {"use_reentrant": False}
        model = self.backbone
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(
                activation_checkpointing_kwargs=kwargs, every_n_layers=every_n_layers, offload=offload
            )
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        if self.is_peft and hasattr(model, "enable_input_require_grads"):
            # with frozen embeddings, reentrant checkpointing would see no input needing grad
            model.enable_input_require_grads()

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None, **kwargs: Any) -> None:
        """Alias of :meth:`activation_checkpointing_enable` (the pre-5.2 transformers name)."""
        self.activation_checkpointing_enable(gradient_checkpointing_kwargs, **kwargs)

    # ----------------------------------------------------------------------------- inference
    @torch.inference_mode()
    def score_lists(self, lists: Sequence[RankingList], batch_size: int = 32) -> list[list[float]]:
        """Scores of every document of every list (no labels needed). Families may override
        with something faster (length-sorted pair batches, FIRST windows)."""
        self.eval()
        out: list[list[float]] = []
        for start in range(0, len(lists), max(1, batch_size)):
            chunk = lists[start : start + batch_size]
            batch = self.collate(chunk)
            batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            inputs = {k: v for k, v in batch.items() if k not in TARGET_KEYS}
            res = self(**inputs)
            for row, lst in zip(res.scores.float().cpu(), chunk):
                out.append(row[: len(lst)].tolist())
        return out

    def rerank(self, query: str, candidates: Sequence[Doc], batch_size: int = 32) -> list[tuple[str, float]]:
        """``(docid, score)`` best first; ties keep the first-stage order (stable sort)."""
        lst = RankingList(qid="q", query=query, docs=list(candidates), labels=[0.0] * len(candidates))
        scores = self.score_lists([lst], batch_size=batch_size)[0]
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        return [(candidates[i].docid, scores[i]) for i in order]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ----------------------------------------------------------------------------- saving
    def save_pretrained(self, save_directory: str | os.PathLike, state_dict: dict | None = None) -> None:
        """Write the checkpoint layout described in the module docstring, atomically."""
        target = Path(save_directory)
        with staged_dir(target.parent, ".tmp-save-") as tmp:  # the prefix trainer.clean_stale_saves removes
            if state_dict is not None:
                backbone_sd = {k[len("backbone.") :]: v for k, v in state_dict.items() if k.startswith("backbone.")}
                head_sd = {k: v for k, v in state_dict.items() if not k.startswith("backbone.")}
            else:
                backbone_sd, head_sd = None, self.head_parameters()
            if self.is_peft:
                self.backbone.save_pretrained(tmp / ADAPTER_DIR, state_dict=backbone_sd, safe_serialization=True)
            else:
                self.backbone.save_pretrained(tmp / BACKBONE_DIR, state_dict=backbone_sd, safe_serialization=True)
            if head_sd:
                save_file({k: v.detach().contiguous().cpu() for k, v in head_sd.items()}, str(tmp / HEAD_NAME))
            self.tokenizer.save_pretrained(tmp / TOKENIZER_DIR)
            # trust_remote_code is the loader's decision, never the checkpoint's: not saved
            saved = {k: v for k, v in self.settings.to_dict().items() if k != "trust_remote_code"}
            meta = {"family": self.family, "settings": saved, "llmrank_version": _version()}
            (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=2))
            # keep what else lives in the folder (trainer state, recipe, model card)
            if target.exists():
                for name in (ADAPTER_DIR, BACKBONE_DIR, HEAD_NAME, TOKENIZER_DIR, CONFIG_NAME):
                    old = target / name
                    if old.is_dir():
                        shutil.rmtree(old)
                    elif old.exists():
                        old.unlink()
                for item in tmp.iterdir():
                    os.replace(item, target / item.name)
            else:
                os.replace(tmp, target)

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike, *, trust_remote_code: bool = False, **overrides: Any
    ) -> Ranker:
        """Rebuild a saved ranker (see :func:`load_ranker`). ``trust_remote_code`` comes from the
        caller only; the value in the folder's ``llmrank_config.json`` is ignored."""
        path = Path(path)
        meta = read_checkpoint_config(path)
        settings = RankerSettings.from_checkpoint(
            meta["settings"], f"{path / CONFIG_NAME}", trust_remote_code=trust_remote_code
        )
        for k, v in overrides.items():
            if k == "options":
                settings.options.update(v or {})
            elif k in RankerSettings.__dataclass_fields__:
                setattr(settings, k, v)
            else:
                raise ValueError(f"unknown ranker setting {k!r}; known: {', '.join(RankerSettings.__dataclass_fields__)}")
        if (path / BACKBONE_DIR).exists():
            base = RankerSettings.from_dict({**settings.to_dict(), "lora": None, "revision": None})
            base.options = {k: v for k, v in base.options.items() if k not in cls.merged_options}
            base.model_name_or_path = str(path / BACKBONE_DIR)
            base.tokenizer_name_or_path = str(path / TOKENIZER_DIR)  # backbone/ holds no tokenizer
            backbone, _ = cls.load_backbone(base)
            ranker = cls(backbone, _load_tokenizer(path), settings)
        else:
            # peft/transformers load on first use: importing the families stays torch-only
            from peft import PeftModel

            check_model_path(settings.model_name_or_path)
            base = RankerSettings.from_dict({**settings.to_dict(), "lora": None})
            backbone, _ = cls.load_backbone(base)
            backbone = PeftModel.from_pretrained(backbone, str(path / ADAPTER_DIR), is_trainable=False)
            ranker = cls(backbone, _load_tokenizer(path), settings)
        ranker._load_head(path)
        return ranker

    def load_trained_weights(self, path: str | os.PathLike) -> None:
        """Load a checkpoint's trained weights into this ranker in place (resume)."""
        path = Path(path)
        if self.is_peft:
            # peft/transformers load on first use: importing the families stays torch-only
            from peft import set_peft_model_state_dict

            sd = load_file(str(path / ADAPTER_DIR / "adapter_model.safetensors"))
            set_peft_model_state_dict(self.backbone, sd)
        else:
            bdir = path / BACKBONE_DIR
            single = bdir / "model.safetensors"
            index = bdir / "model.safetensors.index.json"
            if single.exists():
                files = [single]
            elif index.exists():  # sharded: {"weight_map": {param: shard file}}
                shards = json.loads(index.read_text())["weight_map"].values()
                files = [bdir / name for name in sorted(set(shards))]
            else:
                raise FileNotFoundError(f"{bdir} has neither model.safetensors nor model.safetensors.index.json")
            sd: dict[str, torch.Tensor] = {}
            for file in files:
                sd.update(load_file(str(file)))
            missing, unexpected = self.backbone.load_state_dict(sd, strict=False)
            # tied weights (e.g. lm_head = embeddings) are legitimately absent from the file
            missing = [m for m in missing if m not in _tied_keys(self.backbone)]
            if missing or unexpected:
                raise RuntimeError(f"checkpoint {bdir}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        self._load_head(path)

    def _load_head(self, path: Path) -> None:
        head_file = path / HEAD_NAME
        if head_file.exists():
            sd = load_file(str(head_file))
            missing, unexpected = self.load_state_dict(sd, strict=False)
            if unexpected:
                raise RuntimeError(f"{head_file}: unexpected keys {unexpected}")


def _tied_keys(model: nn.Module) -> set[str]:
    keys = getattr(model, "_tied_weights_keys", None) or []
    if isinstance(keys, dict):
        keys = list(keys)
    return set(keys)


def _load_tokenizer(path: Path) -> Any:
    # peft/transformers load on first use: importing the families stays torch-only
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path / TOKENIZER_DIR))


def _version() -> str:
    try:
        return version("llmrank")
    except Exception:  # not installed (running from a source tree)
        return "0+unknown"


def read_json_file(path: Path) -> Any:
    """A JSON file of a checkpoint, with a one-line error naming it when it is truncated or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(
            f"{path}: not valid JSON ({exc}); the file is truncated or corrupt: re-save or re-download the checkpoint"
        ) from None


def read_checkpoint_config(path: Path) -> dict[str, Any]:
    """The ``llmrank_config.json`` of a checkpoint folder, checked for its ``family`` and ``settings``."""
    meta = read_json_file(path / CONFIG_NAME)
    if not isinstance(meta, dict) or not isinstance(meta.get("family"), str) or "settings" not in meta:
        raise ModelLoadError(f"{path / CONFIG_NAME}: expected a JSON object with 'family' and 'settings'")
    return meta


def check_weight_files(folder: Path) -> None:
    """Open the header of every safetensors file a load reads (cheap: no tensor is read) and parse
    every JSON file, so a corrupt or truncated file is reported by name before loading.

    Only ``folder`` itself and its ``backbone/``, ``adapter/``, ``tokenizer/`` are looked at: a
    training output folder also holds ``checkpoint-N/`` folders, which loading it does not read."""

    places = [folder, *(folder / sub for sub in (BACKBONE_DIR, ADAPTER_DIR, TOKENIZER_DIR))]
    for file in sorted(f for place in places if place.is_dir() for f in place.iterdir()):
        if not file.is_file() or file.name.startswith("."):
            continue
        if file.suffix == ".json":
            read_json_file(file)
        elif file.suffix == ".safetensors":
            try:
                with safe_open(str(file), framework="pt") as f:
                    list(f.keys())
            except Exception as exc:  # safetensors raises its own SafetensorError / OSError
                raise ModelLoadError(
                    f"{file}: not a readable safetensors file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                    "the file is truncated or corrupt: re-save or re-download the checkpoint"
                ) from None


def load_llmrank_checkpoint(path: str | os.PathLike, *, trust_remote_code: bool = False, **overrides: Any) -> Ranker:
    """Load a local llmrank checkpoint folder (one with ``llmrank_config.json``).

    ``trust_remote_code`` comes only from the caller (default off), never from the folder.
    Published formats and Hub ids: :func:`llmrank.loading.load_ranker`."""
    path = Path(path)
    if not (path / CONFIG_NAME).exists():
        raise FileNotFoundError(
            f"{path} has no {CONFIG_NAME}: it is not an llmrank checkpoint "
            "(use llmrank.load_ranker, which also opens published formats)"
        )
    check_weight_files(path)
    meta = read_checkpoint_config(path)
    return family_class(meta["family"]).from_pretrained(path, trust_remote_code=trust_remote_code, **overrides)

