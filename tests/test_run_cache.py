"""RunCache: finished runs reused only under the same settings, plain or gzip'd (the committed form)."""

from __future__ import annotations

import gzip
import json

import pytest

from llmrank.beir_experiment import RunCache


@pytest.mark.parametrize("compress", [False, True])
def test_run_cache_reuses_only_same_settings(tmp_path, compress):
    calls = []

    def compute():
        calls.append(1)
        return {"per_query": {"q1": 0.5, "q2": 1.0}, "label": "é"}

    cache = RunCache(tmp_path, '{"lr": 0.0001}', compress=compress)
    first, new = cache.get("llmrank-softmax-s1", compute)
    assert new and len(calls) == 1
    again, new = RunCache(tmp_path, '{"lr": 0.0001}', compress=compress).get("llmrank-softmax-s1", compute)
    assert not new and len(calls) == 1 and again == first
    # other settings: the stored run is stale and is redone
    _, new = RunCache(tmp_path, '{"lr": 0.0002}', compress=compress).get("llmrank-softmax-s1", compute)
    assert new and len(calls) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["llmrank-softmax-s1.json" + (".gz" if compress else "")]


def test_compressed_run_is_gzip_json_and_reproducible(tmp_path):
    cache = RunCache(tmp_path, "fp", compress=True)
    cache.save("a", {"x": [1.5, 2.0]})
    first = cache.path("a").read_bytes()
    assert json.loads(gzip.decompress(first)) == {"x": [1.5, 2.0], "fingerprint": "fp"}
    cache.save("a", {"x": [1.5, 2.0]})
    assert cache.path("a").read_bytes() == first  # mtime 0: same object, same bytes (clean diffs)


def test_failed_compute_writes_nothing(tmp_path):
    cache = RunCache(tmp_path, "fp", compress=True)

    def boom():
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        cache.get("a", boom)
    assert list(tmp_path.iterdir()) == []
