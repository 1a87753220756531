"""Session-wide fixtures: tiny local models (built once per test session) and small ranking lists."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest
import torch
from hypothesis.configuration import set_hypothesis_home_dir

from llmrank.data.record import Doc, RankingList
from llmrank.testing.tiny_models import make_tiny_bert, make_tiny_llama, make_tiny_t5

# tiny models gain nothing from intra-op threads, and the test machines are shared: one thread
# avoids oversubscription stalls (a tiny T5 forward went from ~1.5 s to milliseconds)
torch.set_num_threads(1)

# tests write only to temporary folders: Hypothesis keeps its example database and constants
# cache there (by default .hypothesis/ in the working directory, the repository), and llmrank's
# index / teacher-score caches go there unless $LLMRANK_CACHE names one (default ~/.cache/llmrank)
_SESSION_DIR = tempfile.mkdtemp(prefix="llmrank-tests-")
atexit.register(shutil.rmtree, _SESSION_DIR, ignore_errors=True)
set_hypothesis_home_dir(os.path.join(_SESSION_DIR, "hypothesis"))
os.environ.setdefault("LLMRANK_CACHE", os.path.join(_SESSION_DIR, "llmrank-cache"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_tiny_t5(tmp_path_factory.mktemp("tiny-t5")))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_tiny_llama(tmp_path_factory.mktemp("tiny-llama")))


def make_lists() -> list[RankingList]:
    """Two ragged lists (3 and 2 documents), one with a title, with teacher scores and orders."""
    return [
        RankingList(
            qid="q1",
            query="what is the protein of the virus?",
            docs=[
                Doc("d1", "the virus protein binds the cell", title="Virus protein"),
                Doc("d2", "a river runs through the city in the north of the country"),
                Doc("d3", "solar energy and climate"),
            ],
            labels=[2.0, 0.0, 1.0],
            teacher_scores=[3.0, -1.0, 0.5],
            order=[0, 2, 1],
        ),
        RankingList(
            qid="q2",
            query="how does the neural ranking model work",
            docs=[Doc("d4", "a neural ranking model scores documents"), Doc("d5", "the king and the queen")],
            labels=[1.0, 0.0],
            teacher_scores=[1.0, -2.0],
            order=[0, 1],
        ),
    ]


@pytest.fixture
def lists() -> list[RankingList]:
    return make_lists()
