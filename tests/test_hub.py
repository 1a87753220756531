"""`llmrank push` / `push_checkpoint` through huggingface_hub's real client against a local fake
Hub (tests/fake_hub.py), the model card and its `model-index` metadata, loading pushed folders,
and the one-line errors for bad input. No network: the fake binds 127.0.0.1."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from llmrank.checkpoint_layout import shareable_files
from llmrank.cli import main as cli_main
from llmrank.config import RecipeError, recipe_from_dict
from llmrank.hub import HubError, push_checkpoint, validate_repo_id
from llmrank.loading import load_ranker
from llmrank.model_card import (
    build_model_card,
    objective_terms,
    parse_eval_results,
    write_model_card,
)
from llmrank.rankers import LoraSettings, Ranker, RankerSettings, family_class
from tests.conftest import make_lists
from tests.fake_hub import FakeHub

TOKEN = "hf_TESTtokenDoNotLeak0123456789"
BEIR_TABLE = [
    {
        "dataset": "scifact",
        "first_stage": "bm25-flat",
        "first_stage_metrics": {"nDCG@10": 0.6789, "R@100": 0.925},
        "reranker_metrics": {"nDCG@10": 0.7123, "R@100": 0.925},
    },
    {
        "dataset": "nfcorpus",
        "first_stage": "bm25-flat",
        "first_stage_metrics": {"nDCG@10": 0.3218},
        "reranker_metrics": {"nDCG@10": 0.3501},
    },
]
RECIPE = """\
model:
  family: cross-encoder
  name_or_path: prajjwal1/bert-tiny
objective:
  - {name: softmax, weight: 1.0}
  - {name: lambdaloss, weight: 0.5}
data:
  train: org/msmarco-hard-negatives
  group_size: 8
training:
  push_to_hub: true
  hub_model_id: me/tiny-ce
  hub_strategy: every_save
"""


def _randomize(ranker: Ranker, seed: int = 1) -> Ranker:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in ranker.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return ranker.eval()


def make_checkpoint(base: str, out: Path, lora: bool = False, pooling: str = "auto") -> Ranker:
    """A cross-encoder checkpoint; the default pooling on a BERT base is ``pooler`` (the stock head,
    exported to sentence-transformers); ``cls`` has no stock head (pushed in llmrank's layout)."""
    torch.manual_seed(0)
    settings = RankerSettings(
        family="cross-encoder",
        model_name_or_path=base,
        lora=LoraSettings(r=4, alpha=8, dropout=0.0) if lora else None,
        options={"pooling": pooling},
    )
    ranker = _randomize(family_class("cross-encoder").build(settings))
    ranker.save_pretrained(out)
    (out / "recipe.yaml").write_text(RECIPE)
    (out / "beir_results.json").write_text(json.dumps(BEIR_TABLE))
    # trainer resume state and nested checkpoints must never be uploaded
    (out / "optimizer.pt").write_bytes(b"optimizer state")
    (out / "training_args.bin").write_bytes(b"pickle")
    (out / "checkpoint-5").mkdir()
    (out / "checkpoint-5" / "llmrank_config.json").write_text("{}")
    return ranker


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch):
    """A fake Hub that HfApi / snapshot_download use by default, with HF_TOKEN set."""
    import huggingface_hub.constants as constants

    with FakeHub(token=TOKEN, lifetime=80) as fake:
        monkeypatch.setattr(constants, "ENDPOINT", fake.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", fake.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        yield fake


def local_copy(fake: FakeHub, repo_id: str, dest: Path, revision: str = "main") -> Path:
    for rel, data in fake.files(repo_id, revision).items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(data)
    return dest


def scores(ranker: Ranker) -> list[list[float]]:
    return ranker.score_lists(make_lists())


def assert_no_token(root: Path, *texts: str) -> None:
    for f in root.rglob("*"):
        if f.is_file():
            assert TOKEN.encode() not in f.read_bytes(), f"token written to {f}"
    for t in texts:
        assert TOKEN not in t


# ------------------------------------------------------------------------------------- push
def test_cli_push_single_commit_card_and_round_trip(
    hub: FakeHub, tmp_path: Path, tiny_bert: str, capsys, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    ckpt = tmp_path / "ckpt"
    ranker = make_checkpoint(tiny_bert, ckpt)
    rc = cli_main(["push", "--model", str(ckpt), "--repo-id", "me/tiny-ce", "--private", "--commit-message", "v1",
                   "--format", "llmrank"])  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "me/tiny-ce" in out

    # one commit, files = the model + card + side files; no resume state, pickles or nested checkpoints
    commits = hub.calls("POST", r"/commit/")
    assert len(commits) == 1 and hub.repos["me/tiny-ce"].commits[0]["summary"] == "v1"
    assert hub.repos["me/tiny-ce"].private
    remote = hub.files("me/tiny-ce")
    assert set(remote) == set(shareable_files(ckpt))
    assert {"README.md", "llmrank_config.json", "recipe.yaml", "beir_results.json", "backbone/config.json"} <= set(remote)
    assert any(p.startswith("tokenizer/") for p in remote)
    assert not any(p.startswith(("checkpoint-", "optimizer", "training_args")) for p in remote)
    for rel, data in remote.items():
        assert (ckpt / rel).read_bytes() == data

    # the token went only into the Authorization header, never into bodies, files or logs
    # (huggingface_hub also GETs its public /api/agent-harnesses registry, without a token)
    repo_calls = [r for r in hub.requests if r.path.startswith(("/api/repos", "/api/models", "/api/validate"))]
    assert len(repo_calls) >= 4
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in repo_calls)
    assert not any(TOKEN.encode() in r.body for r in hub.requests)
    assert_no_token(ckpt, out, err, caplog.text)

    # the card's metadata parses back with the scores in model-index
    from huggingface_hub import ModelCard, metadata_load

    readme = local_copy(hub, "me/tiny-ce", tmp_path / "pulled") / "README.md"
    card = ModelCard.load(readme)
    assert card.data.library_name == "llmrank" and card.data.pipeline_tag == "text-ranking"
    assert card.data.base_model is None  # a local base path is not a Hub id
    found = {(r.dataset_name, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert found[("scifact", "nDCG@10")] == pytest.approx(0.7123)
    assert found[("nfcorpus", "nDCG@10")] == pytest.approx(0.3501)
    meta = metadata_load(readme)
    assert meta["model-index"][0]["name"] == "tiny-ce"
    assert "cross-encoder" in meta["tags"] and "lambdaloss" in meta["tags"]
    assert meta["datasets"] == ["org/msmarco-hard-negatives"]
    text = readme.read_text()
    assert 'load_ranker("me/tiny-ce")' in text
    assert "0.6789 → **0.7123**" in text
    assert "group_size: 8" in text  # the recipe YAML block
    for needle in ("LambdaLoss Framework", "Learning to Rank: From Pairwise Approach", "transformers:", "peft:"):
        assert needle in text

    # loading the pushed folder from a local path reproduces the scores exactly
    assert scores(load_ranker(tmp_path / "pulled")) == scores(ranker)


def test_snapshot_download_round_trip(hub: FakeHub, tmp_path: Path, tiny_bert: str, monkeypatch) -> None:
    ckpt = tmp_path / "ckpt"
    ranker = make_checkpoint(tiny_bert, ckpt)
    push_checkpoint(ckpt, "me/dl", format="llmrank")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    try:
        loaded = load_ranker("me/dl")
    except Exception as exc:  # pragma: no cover - depends on huggingface_hub download internals
        pytest.skip(f"snapshot_download against the fake hub is not supported: {type(exc).__name__}: {exc}")
    assert scores(loaded) == scores(ranker)


def test_push_merge_lora_replaces_adapter(hub: FakeHub, tmp_path: Path, tiny_bert: str) -> None:
    ckpt = tmp_path / "lora"
    adapter = make_checkpoint(tiny_bert, ckpt, lora=True)
    push_checkpoint(ckpt, "me/lora", format="llmrank", token=TOKEN)
    assert any(p.startswith("adapter/") for p in hub.files("me/lora"))

    push_checkpoint(ckpt, "me/lora", merge_lora=True, format="llmrank", token=TOKEN)
    remote = hub.files("me/lora")
    assert not any(p.startswith("adapter/") for p in remote), "stale adapter left next to merged weights"
    assert any(p.startswith("backbone/") and p.endswith(".safetensors") for p in remote)
    assert json.loads(remote["llmrank_config.json"])["settings"]["lora"] is None
    assert b"merged from a LoRA adapter" in remote["README.md"]
    assert not list(tmp_path.glob(".tmp-*")) and (ckpt / "adapter").is_dir()  # source untouched
    merged = load_ranker(local_copy(hub, "me/lora", tmp_path / "pulled"))
    for a, b in zip(scores(adapter), scores(merged)):
        assert a == pytest.approx(b, abs=1e-4)


def test_push_to_branch(hub: FakeHub, tmp_path: Path, tiny_bert: str) -> None:
    ckpt = tmp_path / "ckpt"
    make_checkpoint(tiny_bert, ckpt)
    push_checkpoint(ckpt, "me/br", revision="step-100", format="llmrank", token=TOKEN)
    assert hub.files("me/br", "main") == {}
    assert "llmrank_config.json" in hub.files("me/br", "step-100")
    push_checkpoint(ckpt, "me/br", revision="step-100", format="llmrank", token=TOKEN)  # exists


def test_failed_commit_leaves_repo_untouched_and_retry_fixes(hub: FakeHub, tmp_path: Path, tiny_bert: str) -> None:
    ckpt = tmp_path / "ckpt"
    make_checkpoint(tiny_bert, ckpt)
    hub.fail_commit = True
    with pytest.raises(HubError) as info:
        push_checkpoint(ckpt, "me/flaky", token=TOKEN)
    assert "HTTP 500" in str(info.value) and len(str(info.value).splitlines()) == 1
    assert TOKEN not in str(info.value)
    assert hub.files("me/flaky") == {}  # nothing half-uploaded
    hub.fail_commit = False
    push_checkpoint(ckpt, "me/flaky", token=TOKEN)
    assert "README.md" in hub.files("me/flaky")


def test_wrong_token_is_one_line(hub: FakeHub, tmp_path: Path, tiny_bert: str) -> None:
    ckpt = tmp_path / "ckpt"
    make_checkpoint(tiny_bert, ckpt)
    with pytest.raises(HubError, match="HTTP 401"):
        push_checkpoint(ckpt, "me/x", token="hf_wrong")


# ------------------------------------------------------------------------------ standard layouts
ST_LAYOUT = {"config.json", "model.safetensors", "modules.json", "config_sentence_transformers.json",
             "sentence_bert_config.json", "tokenizer.json", "tokenizer_config.json", "llmrank_export.json",
             "README.md", "recipe.yaml", "beir_results.json"}  # fmt: skip


def test_default_push_is_the_sentence_transformers_layout(hub: FakeHub, tmp_path: Path, tiny_bert: str, capsys,
                                                          caplog) -> None:  # fmt: skip
    from huggingface_hub import ModelCard
    from sentence_transformers import CrossEncoder

    caplog.set_level(logging.DEBUG)
    ckpt = tmp_path / "ckpt"
    ranker = make_checkpoint(tiny_bert, ckpt, pooling="pooler")
    rc = cli_main(["push", "--model", str(ckpt), "--repo-id", "me/st"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    remote = hub.files("me/st")
    assert set(remote) == ST_LAYOUT  # the export layout, side files, no llmrank layout, no resume state
    assert not list(tmp_path.glob(".tmp-*")) and not list(Path(".").glob(".tmp-push-*"))
    assert not any(TOKEN.encode() in r.body for r in hub.requests)
    assert_no_token(ckpt, out, err, caplog.text)
    assert all(TOKEN.encode() not in data for data in remote.values())

    pulled = local_copy(hub, "me/st", tmp_path / "pulled")
    card = ModelCard.load(pulled / "README.md")
    assert card.data.library_name == "sentence-transformers" and card.data.pipeline_tag == "text-ranking"
    assert {r.dataset_name for r in card.data.eval_results} == {"scifact", "nfcorpus"}
    assert 'CrossEncoder("me/st")' in card.text and "AutoModelForSequenceClassification" in card.text
    expected = [s for row in scores(ranker) for s in row]
    got = CrossEncoder(str(pulled)).predict([(lst.query, d.full_text(" ")) for lst in make_lists() for d in lst.docs])
    assert max(abs(float(a) - b) for a, b in zip(got, expected)) <= 1e-5

    # switching layouts deletes the other layout's files in the same commit
    push_checkpoint(ckpt, "me/st", format="llmrank")
    remote = hub.files("me/st")
    assert "llmrank_config.json" in remote and not {"config.json", "modules.json", "model.safetensors"} & set(remote)
    push_checkpoint(ckpt, "me/st")
    assert set(hub.files("me/st")) == ST_LAYOUT


def test_auto_push_falls_back_to_llmrank_layout_and_explicit_format_fails(
    hub: FakeHub, tmp_path: Path, tiny_bert: str, capsys, caplog
) -> None:
    ckpt = tmp_path / "ckpt"
    make_checkpoint(tiny_bert, ckpt, pooling="cls")  # no stock head
    push_checkpoint(ckpt, "me/cls")
    assert "pooling 'cls'" in caplog.text and "llmrank layout" in caplog.text
    assert "llmrank_config.json" in hub.files("me/cls")
    commits = len(hub.calls("POST", r"/commit/"))
    capsys.readouterr()
    assert cli_main(["push", "--model", str(ckpt), "--repo-id", "me/cls", "--format", "transformers"]) == 2
    # stderr also holds transformers' progress bars from loading the checkpoint: one error line
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("llmrank")]
    assert len(errors) == 1 and "pooling 'cls'" in errors[0]
    assert len(hub.calls("POST", r"/commit/")) == commits


def test_push_lora_as_peft_adapter(hub: FakeHub, tmp_path: Path, tiny_bert: str) -> None:
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    ckpt = tmp_path / "lora"
    ranker = make_checkpoint(tiny_bert, ckpt, lora=True, pooling="pooler")
    assert cli_main(["push", "--model", str(ckpt), "--repo-id", "me/ad", "--adapter", "--format", "transformers"]) == 0
    remote = hub.files("me/ad")
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= set(remote)
    assert not any(p.startswith(("adapter/", "backbone/")) or p == "model.safetensors" for p in remote)
    assert b"library_name: peft" in remote["README.md"]
    pulled = local_copy(hub, "me/ad", tmp_path / "pulled")
    tokenizer = AutoTokenizer.from_pretrained(pulled)
    model = PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=1), str(pulled))
    enc = tokenizer([lst.query for lst in make_lists() for _ in lst.docs],
                    [d.full_text(" ") for lst in make_lists() for d in lst.docs], padding=True, return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        got = model.eval()(**enc).logits[:, 0].tolist()
    expected = [s for row in scores(ranker) for s in row]
    assert max(abs(a - b) for a, b in zip(got, expected)) <= 1e-5


def test_default_push_of_seq2seq_is_a_stock_t5(hub: FakeHub, tmp_path: Path, tiny_t5: str) -> None:
    from transformers import T5ForConditionalGeneration

    ckpt = tmp_path / "t5"
    ranker = _randomize(family_class("seq2seq").build(
        RankerSettings(family="seq2seq", model_name_or_path=tiny_t5, options={"mode": "monot5"})
    ))  # fmt: skip
    ranker.save_pretrained(ckpt)
    push_checkpoint(ckpt, "me/mono")
    remote = hub.files("me/mono")
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "llmrank_export.json"} <= set(remote)
    assert json.loads(remote["config.json"])["architectures"] == ["T5ForConditionalGeneration"]
    assert b"library_name: transformers" in remote["README.md"] and b"pipeline_tag: text-ranking" in remote["README.md"]
    model = T5ForConditionalGeneration.from_pretrained(local_copy(hub, "me/mono", tmp_path / "pulled"))
    assert torch.equal(model.lm_head.weight, ranker.backbone.lm_head.weight)


def test_load_ranker_from_pushed_standard_layout(hub: FakeHub, tmp_path: Path, tiny_bert: str) -> None:
    ckpt = tmp_path / "ckpt"
    ranker = make_checkpoint(tiny_bert, ckpt, pooling="pooler")
    push_checkpoint(ckpt, "me/pub")
    loaded = load_ranker(local_copy(hub, "me/pub", tmp_path / "pulled"))
    for a, b in zip(scores(loaded), scores(ranker)):
        assert a == pytest.approx(b, abs=1e-5)


# ------------------------------------------------------------------------------------- bad input
def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("repo_id", ["tiny-ce", "me/", "/x", "a/b/c", "me/bad name", "me/x--y", "me/x.git"])
def test_bad_repo_id(hub: FakeHub, tmp_path: Path, repo_id: str, capsys) -> None:
    assert cli_main(["push", "--model", str(tmp_path), "--repo-id", repo_id]) == 2
    assert "namespace/name" in _one_line_error(capsys)
    assert hub.requests == []


def test_missing_files_are_named(hub: FakeHub, tmp_path: Path, tiny_bert: str, capsys) -> None:
    ckpt = tmp_path / "ckpt"
    make_checkpoint(tiny_bert, ckpt)
    capsys.readouterr()
    for f in (ckpt / "backbone").glob("*.safetensors"):
        f.unlink()
    import shutil

    shutil.rmtree(ckpt / "tokenizer")
    assert cli_main(["push", "--model", str(ckpt), "--repo-id", "me/x"]) == 2
    line = _one_line_error(capsys)
    assert "backbone/*.safetensors" in line and "tokenizer/" in line
    assert hub.requests == []


def test_push_without_token(hub: FakeHub, tmp_path: Path, tiny_bert: str, monkeypatch, capsys) -> None:
    import huggingface_hub.constants as constants
    from huggingface_hub import get_token

    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"), raising=False)
    assert get_token() is None
    ckpt = tmp_path / "ckpt"
    make_checkpoint(tiny_bert, ckpt)
    before = (ckpt / "README.md").exists()
    capsys.readouterr()
    assert cli_main(["push", "--model", str(ckpt), "--repo-id", "me/x"]) == 2
    assert "HF_TOKEN" in _one_line_error(capsys)
    assert hub.requests == [] and (ckpt / "README.md").exists() == before


def test_push_arguments_and_recipe_hub_keys(tmp_path: Path) -> None:
    with pytest.raises(HubError, match="push format 'onnx'"):
        push_checkpoint(tmp_path, "me/x", format="onnx")
    with pytest.raises(HubError, match="contradict"):
        push_checkpoint(tmp_path, "me/x", adapter=True, merge_lora=True)
    assert validate_repo_id("my-org/rankt5_base.v2") == "my-org/rankt5_base.v2"

    # a recipe pushes through TrainingArguments' hub fields; llmrank's default strategy is `end`
    def recipe(**extra):
        raw = {"model": {"family": "cross-encoder", "model_name_or_path": "prajjwal1/bert-tiny"},
               "training": {"output_dir": str(tmp_path / "out")}}  # fmt: skip
        raw["training"].update(extra.pop("training", {}))
        return recipe_from_dict({**raw, **extra}, where="r.yaml")

    r = recipe(training={"push_to_hub": True, "hub_model_id": "me/x", "hub_token": TOKEN, "hub_private_repo": True})
    assert r.training.hub_strategy == "end" and r.training.hub_private_repo
    assert TOKEN not in json.dumps(r.to_dict())  # used, never written into recipe.yaml
    with pytest.raises(RecipeError, match=r"training.hub_model_id \(was hub.repo_id\)") as old:
        recipe(hub={"repo_id": "me/x", "strategy": "every_save"})
    assert str(old.value).startswith("r.yaml: ") and len(str(old.value).splitlines()) == 1
    with pytest.raises(RecipeError, match="hub_strategy = 'checkpoint' is not supported"):
        recipe(training={"push_to_hub": True, "hub_model_id": "me/x", "hub_strategy": "checkpoint"})
    with pytest.raises(RecipeError, match="push_to_hub needs training.hub_model_id"):
        recipe(training={"push_to_hub": True})


# ------------------------------------------------------------------------------------- card
def test_eval_result_shapes() -> None:
    simple = parse_eval_results([{"dataset": "dl19", "first_stage": "bm25", "metrics": {"nDCG@10": 0.7, "n": "x"}}])
    assert simple[0].metrics == {"nDCG@10": 0.7} and simple[0].first_stage == "bm25"
    table = parse_eval_results({"rows": BEIR_TABLE})
    assert [r.dataset for r in table] == ["scifact", "nfcorpus"]
    assert table[0].first_stage_metrics["nDCG@10"] == 0.6789
    nested = parse_eval_results({"dataset": "dl20", "first_stage": {"name": "bm25", "metrics": {"nDCG@10": 0.48}},
                                 "metrics": {"nDCG@10": 0.6}})
    assert nested[0].first_stage == "bm25" and nested[0].first_stage_metrics == {"nDCG@10": 0.48}
    by_name = parse_eval_results({"scifact": {"nDCG@10": 0.7}, "nfcorpus": {"nDCG@10": 0.35}})
    assert {r.dataset for r in by_name} == {"scifact", "nfcorpus"}
    assert parse_eval_results("nonsense") == [] and parse_eval_results({"x": 1}) == []


def test_objective_term_forms() -> None:
    assert objective_terms({"objective": "poly1"}) == [("poly1", None)]
    assert objective_terms({"objective": {"softmax": 1.0, "listmle": {"weight": 0.1}}}) == [
        ("softmax", 1.0),
        ("listmle", 0.1),
    ]
    assert objective_terms({"objective": {"terms": [{"loss": "lipo", "weight": 2}]}}) == [("lipo", 2.0)]


def test_card_for_seq2seq_lora_adapter_with_distillation(tmp_path: Path) -> None:
    ckpt = tmp_path / "ck"
    (ckpt / "adapter").mkdir(parents=True)
    settings = {
        "family": "seq2seq",
        "model_name_or_path": "google/flan-t5-base",
        "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": None},
        "options": {"mode": "rankt5"},
    }
    (ckpt / "llmrank_config.json").write_text(json.dumps({"family": "seq2seq", "settings": settings}))
    recipe = {"objective": [{"name": "poly1", "weight": 1.0}], "distill": {"teacher": "me/t"}, "hub": {"token": TOKEN}}
    (ckpt / "eval_results.json").write_text("{not json")  # unreadable: skipped, not fatal
    path = write_model_card(ckpt, recipe=recipe, eval_results=[{"dataset": "dl19", "metrics": {"nDCG@10": 0.71}}])
    text = path.read_text()
    assert not list(ckpt.glob(".tmp-*"))
    assert TOKEN not in text and "<redacted>" in text
    for needle in ("RankT5: Fine-Tuning T5", "PolyLoss", "Born-Again Neural Rankers", "LoRA adapter (r=16",
                   "google/flan-t5-base"):
        assert needle in text, needle
    card = build_model_card(ckpt)
    assert card.data.base_model == "google/flan-t5-base" and "lora" in card.data.tags
    assert card.data.eval_results is None  # the folder's only eval file is unreadable
