"""The yes/no LLM reranker family against its authors' scoring code, rebuilt here step by step.

For each published template the reference follows the authors' code line by line (tokenizer
calls with their truncation arguments, ``prepare_for_model(..., truncation="only_second")``,
padding, the LM forward and their formula on the last-position logits): Qwen3-Reranker's model
card, FlagEmbedding's ``decoder_only/base.py`` (bge-reranker-v2-gemma) and mixedbread's
``mxbai_rerank_v2.py``. The only liberty taken is ``logits_to_keep=1`` in the reference forward
(the same last-position logits without a ``[B, L, 151669]`` tensor in the test).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llmrank.data.record import Doc, RankingList
from llmrank.loading import load_ranker
from llmrank.rankers.base import LoraSettings, RankerSettings
from llmrank.rankers.prompts import BGE_GEMMA_PROMPT, MXBAI_TASK, QWEN3_DEFAULT_INSTRUCTION, get_template
from llmrank.rankers.yes_no import YesNoRanker
from tests.test_yes_no_models import make_qwen_tokenizer, make_tiny_gemma, make_tiny_qwen2, make_tiny_qwen3

QUERIES = ["what is the protein of the virus?", "how do {neural} rankers work"]
DOCS = [
    "The virus protein binds the cell receptor and enters the cell.",
    "A river runs through the city in the north of the country, past the old bridge. " * 6,
    "Solar energy and climate: the carbon cycle of the ocean.",
]


@pytest.fixture(scope="session")
def qwen_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_qwen_tokenizer(tmp_path_factory.mktemp("qwen-tokenizer"))


@pytest.fixture(scope="session")
def tiny_qwen3(tmp_path_factory: pytest.TempPathFactory, qwen_tokenizer: Path) -> Path:
    return make_tiny_qwen3(tmp_path_factory.mktemp("tiny-qwen3"), qwen_tokenizer)


@pytest.fixture(scope="session")
def tiny_qwen2(tmp_path_factory: pytest.TempPathFactory, qwen_tokenizer: Path) -> Path:
    return make_tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2"), qwen_tokenizer)


@pytest.fixture(scope="session")
def tiny_gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_gemma(tmp_path_factory.mktemp("tiny-gemma"))


@pytest.fixture(scope="session")
def tiny_gemma2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_gemma(tmp_path_factory.mktemp("tiny-gemma2"), softcap=5.0)


def build(path: Path, template: str | dict, max_length: int = 512, lora: LoraSettings | None = None, **options) -> YesNoRanker:
    settings = RankerSettings(family="yes-no", model_name_or_path=str(path), max_length=max_length, lora=lora,
                              options={"template": template, **options})  # fmt: skip
    ranker = YesNoRanker.build(settings)
    assert isinstance(ranker, YesNoRanker)
    return ranker.eval()


def one_list(query: str, docs: list[str]) -> RankingList:
    return RankingList("q", query, [Doc(f"d{i}", t) for i, t in enumerate(docs)], [0.0] * len(docs))


def llmrank_scores(ranker: YesNoRanker, query: str, docs: list[str]) -> torch.Tensor:
    return torch.tensor(ranker.score_lists([one_list(query, docs)], batch_size=8)[0])


# ------------------------------------------------------------------------- authors' references
def prepare_for_model_only_second(first: list[int], second: list[int], max_length: int) -> list[int]:
    """``tokenizer.prepare_for_model(first, second, truncation="only_second", max_length=...,
    add_special_tokens=False)["input_ids"]`` of transformers 4 (removed from fast tokenizers in 5):
    the second sequence loses its last tokens until the pair fits."""
    excess = len(first) + len(second) - max_length
    if excess > 0:
        assert excess < len(second), "the authors' code would log an error and not truncate"
        second = second[: len(second) - excess]
    return first + second


def _model(path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(str(path), padding_side="left")


@torch.no_grad()
def qwen3_reference(path: Path, query: str, docs: list[str], max_length: int, instruction: str | None = None) -> torch.Tensor:
    """Qwen3-Reranker model card: format_instruction, process_inputs, compute_logits."""
    model, tokenizer = _model(path)
    token_false_id = tokenizer.convert_tokens_to_ids("no")
    token_true_id = tokenizer.convert_tokens_to_ids("yes")
    prefix = ("<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
              "Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n")  # fmt: skip
    suffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    prefix_tokens = tokenizer.encode(prefix, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(suffix, add_special_tokens=False)
    instruction = instruction or "Given a web search query, retrieve relevant passages that answer the query"
    pairs = [f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}" for doc in docs]
    inputs = tokenizer(pairs, padding=False, truncation="longest_first", return_attention_mask=False,
                       max_length=max_length - len(prefix_tokens) - len(suffix_tokens))  # fmt: skip
    for i, ele in enumerate(inputs["input_ids"]):
        inputs["input_ids"][i] = prefix_tokens + ele + suffix_tokens
    inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=max_length)
    batch_scores = model(**inputs, logits_to_keep=1).logits[:, -1, :]
    true_vector, false_vector = batch_scores[:, token_true_id], batch_scores[:, token_false_id]
    probs = torch.log_softmax(torch.stack([false_vector, true_vector], dim=1), dim=1)[:, 1].exp()
    diff = true_vector - false_vector
    torch.testing.assert_close(probs, torch.sigmoid(diff), atol=1e-6, rtol=0)  # their probability = sigmoid(ours)
    return diff


@torch.no_grad()
def bge_gemma_reference(path: Path, query: str, docs: list[str], max_length: int) -> torch.Tensor:
    """FlagEmbedding BaseLLMReranker.compute_score_single_gpu (query_instruction_format "{}{}")."""
    model, tokenizer = _model(path)
    yes_loc = tokenizer("Yes", add_special_tokens=False)["input_ids"][0]
    query_max_length = max_length * 3 // 4
    prompt_inputs = tokenizer(BGE_GEMMA_PROMPT, return_tensors=None, add_special_tokens=False)["input_ids"]
    sep_inputs = tokenizer("\n", return_tensors=None, add_special_tokens=False)["input_ids"]
    encode_max_length = max_length + len(sep_inputs) + len(prompt_inputs)
    items = []
    for doc in docs:
        q = tokenizer("A: " + query, add_special_tokens=False, max_length=query_max_length, truncation=True)["input_ids"]
        p = tokenizer("B: " + doc, add_special_tokens=False, max_length=max_length, truncation=True)["input_ids"]
        assert tokenizer.bos_token_id is not None and tokenizer.bos_token_id != tokenizer.pad_token_id
        item = prepare_for_model_only_second([tokenizer.bos_token_id] + q, sep_inputs + p, encode_max_length)
        items.append({"input_ids": item + sep_inputs + prompt_inputs})
    batch = tokenizer.pad(items, padding=True, return_tensors="pt")
    logits = model(**batch, logits_to_keep=1).logits[:, -1]  # left padding: last_logit_pool takes [:, -1]
    return logits[:, yes_loc]


@torch.no_grad()
def mxbai_reference(path: Path, query: str, docs: list[str], max_length: int, instruction: str | None = None) -> torch.Tensor:
    """mxbai_rerank_v2.MxbaiRerankV2.prepare_inputs + forward."""
    model, tokenizer = _model(path)

    def ids(x: str) -> list[int]:
        return tokenizer(x, return_tensors=None, add_special_tokens=False)["input_ids"]

    yes_loc, no_loc = ids("1")[0], ids("0")[0]
    prefix = ids("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    suffix = ids("<|im_end|>\n<|im_start|>assistant\n")
    task, sep = ids(MXBAI_TASK), ids("\n")
    predefined = len(prefix) + len(task) + len(suffix) + len(sep)
    model_max_length = tokenizer.model_max_length
    assert max_length + predefined <= model_max_length
    items = []
    for doc in docs:
        query_prompt = f"query: {query}"
        if instruction:
            query_prompt = "".join([f"instruction: {instruction}", "\n", query_prompt])
        q = tokenizer(query_prompt, add_special_tokens=False, max_length=max_length * 3 // 4, truncation=True)["input_ids"]
        doc_maxlen = min(model_max_length - len(q) - predefined, max_length)
        d = tokenizer(f"document: {doc}", add_special_tokens=False, max_length=doc_maxlen, truncation=True)["input_ids"]
        item = prepare_for_model_only_second(q, sep + d, max_length)
        items.append({"input_ids": prefix + item + sep + task + suffix})
    batch = tokenizer.pad(items, padding="longest", pad_to_multiple_of=8, return_tensors="pt")
    logits = model(**batch, logits_to_keep=1).logits[:, -1]
    return logits[:, yes_loc] - logits[:, no_loc]


# ------------------------------------------------------------------------------------ parity
@pytest.mark.parametrize("max_length", [512, 60])
def test_qwen3_reranker_matches_model_card(tiny_qwen3: Path, max_length: int) -> None:
    ranker = build(tiny_qwen3, "qwen3-reranker", max_length=max_length)
    for query in QUERIES:
        ref = qwen3_reference(tiny_qwen3, query, DOCS, max_length)
        torch.testing.assert_close(llmrank_scores(ranker, query, DOCS), ref, atol=1e-5, rtol=0)
    # a custom instruction goes into <Instruct>
    custom = build(tiny_qwen3, "qwen3-reranker", max_length=max_length, instruction="Find the paper")
    ref = qwen3_reference(tiny_qwen3, QUERIES[0], DOCS, max_length, instruction="Find the paper")
    torch.testing.assert_close(llmrank_scores(custom, QUERIES[0], DOCS), ref, atol=1e-5, rtol=0)


def test_qwen3_token_ids_are_the_published_ones(tiny_qwen3: Path) -> None:
    ranker = build(tiny_qwen3, "qwen3-reranker")
    assert (ranker.true_id, ranker.false_id) == (9693, 2152)  # what ST's LogitScore and vLLM read
    assert ranker.suffix_ids[-4:] == [151667, 271, 151668, 271]  # <think> \n\n </think> \n\n
    assert ranker.prefix_ids[:3] == [151644, 8948, 198]  # <|im_start|> system \n


@pytest.mark.parametrize("max_length", [512, 40])
def test_bge_reranker_v2_gemma_matches_flagembedding(tiny_gemma: Path, max_length: int) -> None:
    ranker = build(tiny_gemma, "bge-reranker-v2-gemma", max_length=max_length)
    for query in QUERIES:
        ref = bge_gemma_reference(tiny_gemma, query, DOCS, max_length)
        torch.testing.assert_close(llmrank_scores(ranker, query, DOCS), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("max_length", [512, 48])
def test_mxbai_rerank_v2_matches_mixedbread(tiny_qwen2: Path, max_length: int) -> None:
    ranker = build(tiny_qwen2, "mxbai-rerank-v2", max_length=max_length)
    assert (ranker.true_id, ranker.false_id) == (16, 15)
    for query in QUERIES:
        ref = mxbai_reference(tiny_qwen2, query, DOCS, max_length)
        torch.testing.assert_close(llmrank_scores(ranker, query, DOCS), ref, atol=1e-5, rtol=0)
    ranker = build(tiny_qwen2, "mxbai-rerank-v2", max_length=max_length, instruction="medical questions")
    ref = mxbai_reference(tiny_qwen2, QUERIES[0], DOCS, max_length, instruction="medical questions")
    torch.testing.assert_close(llmrank_scores(ranker, QUERIES[0], DOCS), ref, atol=1e-5, rtol=0)


def test_custom_template_log_softmax_with_softcapping(tiny_gemma2: Path) -> None:
    """A recipe template (monoT5-style log p(true) over true/false) on Gemma-2 (final logit soft-capping)."""
    template = {"prefix": "Query: ", "truncation": "pair", "query_format": "{query}", "sep": " Document: ",
                "doc_format": "{document}", "suffix": [" Relevant:"], "add_bos": True, "true_token": "true",
                "false_token": "false", "scoring": "log_softmax"}  # fmt: skip
    ranker = build(tiny_gemma2, template, max_length=64)
    model, tokenizer = _model(tiny_gemma2)
    t_id, f_id = (tokenizer(x, add_special_tokens=False)["input_ids"][0] for x in ("true", "false"))
    rows = []
    for doc in DOCS:
        q = tokenizer(QUERIES[0], add_special_tokens=False)["input_ids"][: 64 * 3 // 4]
        d = tokenizer(doc, add_special_tokens=False)["input_ids"]
        prefix = tokenizer("Query: ", add_special_tokens=False)["input_ids"]
        second = (tokenizer(" Document: ", add_special_tokens=False)["input_ids"] + d)[: 64 - 1 - len(q)]
        rows.append({"input_ids": [tokenizer.bos_token_id] + prefix + q + second
                     + tokenizer(" Relevant:", add_special_tokens=False)["input_ids"]})
    with torch.no_grad():
        logits = model(**tokenizer.pad(rows, padding=True, return_tensors="pt"), logits_to_keep=1).logits[:, -1]
    assert model.config.final_logit_softcapping == 5.0 and logits.abs().max() <= 5.0
    ref = torch.log_softmax(logits[:, [t_id, f_id]], dim=-1)[:, 0]
    torch.testing.assert_close(llmrank_scores(ranker, QUERIES[0], DOCS), ref, atol=1e-5, rtol=0)


def test_sentence_transformers_causal_cross_encoder_agrees(tiny_qwen3: Path) -> None:
    """sentence-transformers' causal-LM CrossEncoder (Transformer + LogitScore(yes, no)) on the same
    ids: its raw score (no activation) is llmrank's Qwen3 score."""
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder.modules import LogitScore

    ce = CrossEncoder(str(tiny_qwen3), device="cpu", activation_fn=torch.nn.Identity())
    assert isinstance(ce[-1], LogitScore) and (ce[-1].true_token_id, ce[-1].false_token_id) == (9693, 2152)
    ranker = build(tiny_qwen3, "qwen3-reranker")
    pairs = ranker.list_pairs([one_list(QUERIES[0], DOCS)])
    batch = ranker.pad_pairs(pairs)
    with torch.no_grad():
        feats = ce[0]({"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "logits_to_keep": 1})
        st = ce[1](feats)["scores"].squeeze(1)
    torch.testing.assert_close(llmrank_scores(ranker, QUERIES[0], DOCS), st, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------------- mechanics
def test_never_builds_vocab_logits(tiny_qwen3: Path) -> None:
    """Only the answer rows of the LM head are used: lm_head.forward never runs (no [B, vocab])."""
    ranker = build(tiny_qwen3, "qwen3-reranker", lora=LoraSettings(r=4, alpha=8))
    calls: list[tuple] = []
    head = ranker._causal_lm().get_output_embeddings()
    handle = head.register_forward_hook(lambda m, i, o: calls.append(o.shape))
    try:
        ranker.score_lists([one_list(QUERIES[0], DOCS)])
        ranker.train()
        ranker.compute_reference = True
        batch = ranker.collate([one_list(QUERIES[0], DOCS)])
        inputs = {k: v for k, v in batch.items() if k not in ("labels", "list_mask")}
        out = ranker(**inputs)
        out.scores.sum().backward()
    finally:
        handle.remove()
    assert calls == []
    assert out.logprobs is not None and out.ref_logprobs is not None


def test_left_padding_invariance(tiny_qwen3: Path) -> None:
    ranker = build(tiny_qwen3, "qwen3-reranker")
    lst = one_list(QUERIES[0], DOCS)
    batched = ranker.score_lists([lst], batch_size=8)[0]
    alone = [ranker.score_lists([one_list(QUERIES[0], [d])], batch_size=1)[0][0] for d in DOCS]
    torch.testing.assert_close(torch.tensor(batched), torch.tensor(alone), atol=1e-5, rtol=0)
    pairs = ranker.list_pairs([lst])
    padded = ranker.pad_pairs(pairs)
    assert padded["attention_mask"][:, -1].all() and not padded["attention_mask"][:, 0].all()


def test_vocab_logprob_matches_full_log_softmax(tiny_gemma: Path) -> None:
    """One answer token: log p(Yes) over the whole vocabulary, streamed in chunks, with gradients."""
    from llmrank.rankers.yes_no import vocab_logsumexp

    torch.manual_seed(0)
    h = torch.randn(3, 32, requires_grad=True)
    w = torch.randn(1000, 32, requires_grad=True)
    b = torch.randn(1000)
    ours = vocab_logsumexp(h, w, b, softcap=None, chunk=128)
    full = torch.logsumexp(h @ w.T + b, dim=-1)
    torch.testing.assert_close(ours, full, atol=1e-5, rtol=0)
    (g_ours,) = torch.autograd.grad(ours.sum(), h)
    (g_full,) = torch.autograd.grad(torch.logsumexp(h @ w.T + b, dim=-1).sum(), h)
    torch.testing.assert_close(g_ours, g_full, atol=1e-5, rtol=0)
    ranker = build(tiny_gemma, "bge-reranker-v2-gemma")
    assert ranker.logprob_mode == "vocab"
    ranker.compute_reference = True
    batch = ranker.collate([one_list(QUERIES[0], DOCS)])
    out = ranker(**{k: v for k, v in batch.items() if k not in ("labels", "list_mask")})
    model, tokenizer = _model(tiny_gemma)
    pairs = ranker.list_pairs([one_list(QUERIES[0], DOCS)])
    with torch.no_grad():
        padded = ranker.pad_pairs(pairs)
        logits = model(**padded, logits_to_keep=1).logits[:, -1]
    ref = torch.log_softmax(logits, dim=-1)[:, ranker.true_id]
    torch.testing.assert_close(out.logprobs[0], ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.ref_logprobs[0], ref, atol=1e-5, rtol=0)  # full FT: reference = the base


def test_template_errors_are_clear(tiny_qwen3: Path) -> None:
    with pytest.raises(ValueError, match="unknown yes/no template 'qwen4'"):
        build(tiny_qwen3, "qwen4")
    with pytest.raises(ValueError, match="unknown field"):
        get_template({"prefx": "x"})
    with pytest.raises(ValueError, match="needs a false_token"):
        get_template({"scoring": "difference", "false_token": None})
    with pytest.raises(ValueError, match="unknown yes-no option"):
        build(tiny_qwen3, "qwen3-reranker", pooling="last")
    with pytest.raises(ValueError, match="true_token"):
        build(tiny_qwen3, {"base": "qwen3-reranker", "true_token": "definitely yes"})
    with pytest.raises(ValueError, match="max_length 40 leaves no room"):
        build(tiny_qwen3, "qwen3-reranker", max_length=40)
    assert get_template("qwen3-reranker").instruction == QWEN3_DEFAULT_INSTRUCTION


# ---------------------------------------------------------------------------------- training
def _train_steps(ranker: YesNoRanker, objective: list[dict], steps: int = 4, lr: float = 5e-3) -> list[float]:
    from llmrank.losses import Objective

    obj = Objective(objective)
    lists = [
        RankingList("a", QUERIES[0], [Doc("p", DOCS[0]), Doc("n1", DOCS[1]), Doc("n2", DOCS[2])], [1.0, 0.0, 0.0]),
        RankingList("b", QUERIES[1], [Doc("n", DOCS[2]), Doc("p", "neural rankers score documents")], [0.0, 1.0]),
    ]
    params = [p for p in ranker.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    ranker.train()
    losses = []
    for _ in range(steps):
        batch = ranker.collate(lists)
        targets = {k: batch.pop(k) for k in ("labels", "list_mask")}
        loss, _ = obj(ranker(**batch), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses


def test_softmax_training_reduces_loss(tiny_qwen3: Path) -> None:
    ranker = build(tiny_qwen3, "qwen3-reranker", max_length=128)
    losses = _train_steps(ranker, [{"name": "softmax"}], steps=5)
    assert losses[-1] < losses[0]


def test_lipo_lambda_with_lora_uses_policy_and_reference(tiny_qwen3: Path, tmp_path: Path) -> None:
    ranker = build(tiny_qwen3, "qwen3-reranker", max_length=128, lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    ranker.compute_reference = True
    before = {k: v.clone() for k, v in ranker.backbone.state_dict().items() if "lora_B" in k}
    assert before and all(float(v.abs().sum()) == 0 for v in before.values())  # LoRA B starts at zero
    batch = ranker.collate([one_list(QUERIES[0], DOCS)])
    out0 = ranker(**{k: v for k, v in batch.items() if k not in ("labels", "list_mask")})
    torch.testing.assert_close(out0.logprobs, out0.ref_logprobs)  # untrained adapters: policy = reference
    losses = _train_steps(ranker, [{"name": "lipo_lambda", "beta": 1.0}], steps=6, lr=2e-2)
    after = {k: v for k, v in ranker.backbone.state_dict().items() if "lora_B" in k}
    assert any(float(after[k].abs().sum()) > 0 for k in before)
    assert losses[-1] < losses[0]
    ranker.eval()
    out1 = ranker(**{k: v for k, v in batch.items() if k not in ("labels", "list_mask")})
    assert not torch.allclose(out1.logprobs, out1.ref_logprobs)
    torch.testing.assert_close(out1.ref_logprobs, out0.ref_logprobs, atol=1e-5, rtol=0)  # reference is frozen
    # save + reload (adapter + resolved template) scores the same
    ranker.save_pretrained(tmp_path / "ckpt")
    lst = one_list(QUERIES[1], DOCS)
    torch.testing.assert_close(torch.tensor(load_ranker(tmp_path / "ckpt").score_lists([lst])[0]),
                               torch.tensor(ranker.score_lists([lst])[0]), atol=1e-6, rtol=0)  # fmt: skip


def test_gradient_checkpointing_gives_the_same_gradients(tiny_qwen3: Path) -> None:
    grads = []
    for ckpt in (False, True):
        torch.manual_seed(0)  # same LoRA A init
        ranker = build(tiny_qwen3, "qwen3-reranker", max_length=128, lora=LoraSettings(r=4, alpha=8, dropout=0.0))
        torch.manual_seed(0)
        for name, p in ranker.backbone.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.1)
        if ckpt:
            ranker.gradient_checkpointing_enable()
        ranker.train()
        batch = ranker.collate([one_list(QUERIES[0], DOCS)])
        out = ranker(**{k: v for k, v in batch.items() if k not in ("labels", "list_mask")})
        out.scores.sum().backward()
        grads.append(torch.cat([p.grad.flatten() for n, p in ranker.backbone.named_parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


def test_published_yes_no_models_load_by_name_or_flag(tiny_qwen3: Path, tmp_path: Path) -> None:
    """A causal LM named like Qwen3-Reranker loads as the yes-no family with its template and its
    authors' length; any other name needs --family yes-no --template NAME (CLI flags included)."""
    import shutil

    from llmrank.rankers.base import ModelLoadError

    named = tmp_path / "Qwen3-Reranker-tiny"
    shutil.copytree(tiny_qwen3, named)
    ranker = load_ranker(named)
    assert ranker.family == "yes-no" and ranker.settings.max_length == 8192
    expected = llmrank_scores(build(tiny_qwen3, "qwen3-reranker", max_length=8192), QUERIES[0], DOCS)
    torch.testing.assert_close(llmrank_scores(ranker, QUERIES[0], DOCS), expected, atol=1e-5, rtol=0)

    with pytest.raises(ModelLoadError, match="--family yes-no --template"):
        load_ranker(tiny_qwen3)
    forced = load_ranker(tiny_qwen3, family="yes-no", template="mxbai-rerank-v2")
    expected = llmrank_scores(build(tiny_qwen3, "mxbai-rerank-v2", max_length=8192), QUERIES[0], DOCS)
    torch.testing.assert_close(llmrank_scores(forced, QUERIES[0], DOCS), expected, atol=1e-5, rtol=0)
