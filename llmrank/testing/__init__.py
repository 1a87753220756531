"""Fixtures shared by llmrank's tests and benchmarks (like ``transformers.testing_utils``).

- :mod:`llmrank.testing.tiny_models`: tiny random backbones (BERT, T5, Llama) and real tokenizers
  (MiniLM's WordPiece, Mistral v0.1's SentencePiece, Qwen3's BPE), saved as loadable folders.
- :mod:`llmrank.testing.first_task`: a synthetic FIRST task a 2-layer Llama learns on a CPU.
- :mod:`llmrank.testing.measure`: step timers, peak memory and package versions for benchmarks.

The tokenizer sources come with the ``test`` extra (``pip install 'llmrank[test]'``).
"""
