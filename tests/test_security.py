"""A checkpoint must not be able to run its own code: ``trust_remote_code`` comes only from the caller.

The malicious folders below ship Python (``evil.py``) that writes a marker file when imported and
point transformers at it through ``auto_map`` in ``config.json`` / ``tokenizer_config.json``; the
llmrank one also sets ``trust_remote_code: true`` in its ``llmrank_config.json``. Loading them with
:func:`llmrank.load_ranker` or ``llmrank rerank --model`` must leave no marker; only the caller's
explicit ``trust_remote_code=True`` / ``--trust-remote-code`` runs the code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import llmrank
from llmrank.rankers.base import CONFIG_NAME, RankerSettings, family_class

EVIL = '''
import pathlib
pathlib.Path({marker!r}).write_text("remote code ran")
from transformers import BertConfig, BertModel, BertForSequenceClassification
class EvilConfig(BertConfig):
    pass
class EvilModel(BertModel):
    config_class = EvilConfig
class EvilForSequenceClassification(BertForSequenceClassification):
    config_class = EvilConfig
'''


def _plant(folder: Path, marker: Path) -> None:
    """Add evil.py and auto_map entries to every config.json / tokenizer_config.json under folder."""
    for cfg in folder.rglob("config.json"):
        (cfg.parent / "evil.py").write_text(EVIL.format(marker=str(marker)))
        data = json.loads(cfg.read_text())
        data["auto_map"] = {
            "AutoConfig": "evil.EvilConfig",
            "AutoModel": "evil.EvilModel",
            "AutoModelForSequenceClassification": "evil.EvilForSequenceClassification",
        }
        cfg.write_text(json.dumps(data))


@pytest.fixture()
def evil_llmrank_checkpoint(tiny_bert: str, tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "MARKER"
    ranker = family_class("cross-encoder").build(
        RankerSettings(family="cross-encoder", model_name_or_path=tiny_bert, max_length=32)
    )
    ckpt = tmp_path / "evil-ckpt"
    ranker.save_pretrained(ckpt)
    meta = json.loads((ckpt / CONFIG_NAME).read_text())
    assert "trust_remote_code" not in meta["settings"]  # llmrank no longer writes it
    meta["settings"]["trust_remote_code"] = True  # ... but an attacker does
    (ckpt / CONFIG_NAME).write_text(json.dumps(meta))
    _plant(ckpt, marker)
    return ckpt, marker


@pytest.fixture()
def evil_published_folder(tiny_bert: str, tmp_path: Path) -> tuple[Path, Path]:
    """A plain BertForSequenceClassification folder (no llmrank_config.json) with auto_map."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    marker = tmp_path / "MARKER"
    torch.manual_seed(0)
    config = BertConfig.from_pretrained(tiny_bert, num_labels=1, architectures=["BertForSequenceClassification"])
    folder = tmp_path / "evil-published"
    BertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(folder)
    _plant(folder, marker)
    return folder, marker


def test_llmrank_checkpoint_cannot_enable_remote_code(evil_llmrank_checkpoint, lists) -> None:
    ckpt, marker = evil_llmrank_checkpoint
    ranker = llmrank.load_ranker(ckpt)
    assert not marker.exists(), "a checkpoint ran its own code"
    assert ranker.settings.trust_remote_code is False
    assert len(ranker.score_lists(lists)[0]) == 3


def test_published_folder_cannot_enable_remote_code(evil_published_folder, lists) -> None:
    folder, marker = evil_published_folder
    ranker = llmrank.load_ranker(folder)
    assert not marker.exists()
    assert ranker.family == "seq-cls" and ranker.settings.trust_remote_code is False
    assert len(ranker.score_lists(lists)[1]) == 2


def test_only_the_callers_flag_runs_remote_code(evil_published_folder) -> None:
    """The setup is live: with the caller's explicit flag transformers does import evil.py."""
    folder, marker = evil_published_folder
    try:
        llmrank.load_ranker(folder, trust_remote_code=True)
    except Exception:  # the evil classes need not load fully; importing them is the point
        pass
    assert marker.exists()


def _cli_rerank(model: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d1 1 3.0 bm25\nq1 Q0 d2 2 2.0 bm25\n")
    topics = tmp_path / "topics.tsv"
    topics.write_text("q1\twhat is the virus protein\n")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        json.dumps({"_id": "d1", "title": "", "text": "the virus protein binds"}) + "\n"
        + json.dumps({"_id": "d2", "title": "", "text": "a river in the city"}) + "\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "llmrank.cli", "rerank", "--model", str(model), "--run", str(run),
           "--topics", str(topics), "--corpus", str(corpus), "--out", str(tmp_path / "out.trec"),
           "--no-progress", *extra]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("which", ["llmrank", "published"])
def test_cli_rerank_does_not_run_checkpoint_code(which, evil_llmrank_checkpoint, evil_published_folder, tmp_path) -> None:
    folder, marker = evil_llmrank_checkpoint if which == "llmrank" else evil_published_folder
    res = _cli_rerank(folder, tmp_path)
    assert res.returncode == 0, res.stderr
    assert not marker.exists()
    assert (tmp_path / "out.trec").read_text().count("\n") == 2


def test_cli_trust_remote_code_flag_is_the_way(evil_published_folder, tmp_path) -> None:
    folder, marker = evil_published_folder
    _cli_rerank(folder, tmp_path, "--trust-remote-code")
    assert marker.exists()


def test_revision_is_passed_to_transformers(tiny_bert: str, tmp_path: Path) -> None:
    """A pinned revision reaches from_pretrained (a local folder has no revisions, so any pin other
    than the default fails inside transformers/huggingface_hub -- proof that it was passed)."""
    folder = tmp_path / "m"
    shutil.copytree(tiny_bert, folder)
    settings = RankerSettings(family="cross-encoder", model_name_or_path=str(folder), revision="abc123")
    assert settings.hub_kwargs() == {"trust_remote_code": False, "revision": "abc123"}
    assert RankerSettings(family="x", model_name_or_path="m", tokenizer_name_or_path="other",
                          revision="r").tokenizer_kwargs() == {"trust_remote_code": False}


def test_model_kwargs_from_cli_flags() -> None:
    import argparse

    from llmrank.commands.model_args import add_model_arguments, model_kwargs

    p = argparse.ArgumentParser()
    add_model_arguments(p)
    assert model_kwargs(p.parse_args([])) == {"trust_remote_code": False}
    args = p.parse_args(["--family", "seq-cls", "--template", "model-card", "--revision", "v1", "--trust-remote-code",
                         "--option", "max_length=196", "--option", "pooling=cls"])  # fmt: skip
    assert model_kwargs(args) == {"trust_remote_code": True, "family": "seq-cls", "template": "model-card",
                                  "revision": "v1", "max_length": 196, "options": {"pooling": "cls"}}  # fmt: skip
    with pytest.raises(ValueError, match="KEY=VALUE"):
        model_kwargs(p.parse_args(["--option", "oops"]))


@pytest.mark.parametrize("command", ["rerank", "trec-dl", "beir", "score"])
def test_every_model_command_takes_the_loading_flags(command: str) -> None:
    """--trust-remote-code / --revision / --family / --template reach load_ranker from every --model command."""
    from llmrank.cli import build_parser
    from llmrank.commands.model_args import model_kwargs

    required = {"rerank": ["--run", "r", "--out", "o"], "trec-dl": [], "beir": ["--datasets", "scifact"],
                "score": ["--data", "d", "--out", "o"]}[command]  # fmt: skip
    args = build_parser().parse_args([command, "--model", "m", *required, "--trust-remote-code", "--revision", "v2",
                                      "--family", "seq-cls", "--template", "tevatron"])  # fmt: skip
    assert model_kwargs(args) == {"trust_remote_code": True, "revision": "v2", "family": "seq-cls", "template": "tevatron"}
    assert model_kwargs(build_parser().parse_args([command, "--model", "m", *required]))["trust_remote_code"] is False
