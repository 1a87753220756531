"""The tests' tiny models: they live in :mod:`llmrank.testing.tiny_models` (shared with ``bench/``);
this module keeps the ``tests.tiny_models`` import path."""

from llmrank.testing.tiny_models import (  # noqa: F401 - re-exported
    ZEPHYR_CHAT_TEMPLATE,
    make_t5_tokenizer,
    make_tiny_bert,
    make_tiny_llama,
    make_tiny_t5,
    mistral_v1_sentencepiece,
)
from llmrank.testing.tiny_models import synthetic_corpus as _corpus  # noqa: F401 - test_published_loading's name
