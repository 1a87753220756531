"""FSDP's transformer-based wrap finds the decoder layer class of a ranker (issue: with no layer
class in ``recipes/accelerate/fsdp.yaml``, Accelerate reads the wrapped model's
``_no_split_modules``; a Ranker without it became one FSDP unit, sharding nothing per layer)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmrank.rankers.base import LoraSettings, RankerSettings, family_class

ROOT = Path(__file__).resolve().parents[1]
FSDP_YAML = ROOT / "recipes" / "accelerate" / "fsdp.yaml"


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_models import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def _plugin_from_recipe(monkeypatch: pytest.MonkeyPatch):
    """The plugin as ``accelerate launch --config_file recipes/accelerate/fsdp.yaml`` builds it:
    the launcher turns ``fsdp_config`` into ``FSDP_*`` environment variables the plugin reads."""
    from accelerate.utils import FullyShardedDataParallelPlugin

    config = yaml.safe_load(FSDP_YAML.read_text())["fsdp_config"]
    monkeypatch.setenv("FSDP_AUTO_WRAP_POLICY", str(config["fsdp_auto_wrap_policy"]))
    if config.get("fsdp_transformer_layer_cls_to_wrap"):
        monkeypatch.setenv("FSDP_TRANSFORMER_CLS_TO_WRAP", str(config["fsdp_transformer_layer_cls_to_wrap"]))
    else:
        monkeypatch.delenv("FSDP_TRANSFORMER_CLS_TO_WRAP", raising=False)
    return FullyShardedDataParallelPlugin()


@pytest.mark.parametrize("family, lora", [("first", False), ("first", True), ("cross-encoder", False)])
def test_fsdp_plugin_resolves_llama_decoder_layer(
    tiny_llama: Path, monkeypatch: pytest.MonkeyPatch, family: str, lora: bool
) -> None:
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer

    settings = RankerSettings(
        family=family, model_name_or_path=str(tiny_llama), max_length=256,
        lora=LoraSettings(r=2, alpha=4, dropout=0.0) if lora else None,
    )  # fmt: skip
    ranker = family_class(family).build(settings)
    assert ranker._no_split_modules == ["LlamaDecoderLayer"]
    plugin = _plugin_from_recipe(monkeypatch)
    plugin.set_auto_wrap_policy(ranker)
    assert plugin.auto_wrap_policy.func is transformer_auto_wrap_policy
    assert plugin.auto_wrap_policy.keywords["transformer_layer_cls"] == {LlamaDecoderLayer}
    # one FSDP unit per decoder layer
    wrapped = [m for m in ranker.modules() if plugin.auto_wrap_policy(module=m, recurse=False, nonwrapped_numel=0)]
    layers = [m for m in ranker.modules() if isinstance(m, LlamaDecoderLayer)]
    assert len(layers) >= 2 and wrapped == layers
