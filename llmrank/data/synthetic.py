"""A generated ranking task that lexical matching fails and a small model learns in minutes.

Each query asks about one *concept* word (``"tell me about the falcon"``). Documents never
need the concept word to be relevant; relevance comes through a fixed, seeded mapping:

* grade 3 -- two or three of the concept's *attribute* words (its "synonyms"),
* grade 2 -- one attribute word,
* grade 1 -- the concept's *category* word only,
* grade 0 -- *distractors* that repeat the query's literal words (the concept word and the
  template words) next to another concept's attributes, and random documents about other concepts.

The first stage is a lexical overlap score (idf-weighted, saturated term frequency), which puts
the distractors on top: its nDCG@10 is low, while the mapping concept -> attributes/category is
learnable from the training queries (every concept has training queries; the test queries ask
about the same concepts with new phrasings and new documents). Texts are short (<= 32 words) of
ordinary lowercase English words, all single WordPiece tokens of the bert-base-uncased vocabulary.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from llmrank.data.record import Doc, RankingList

__all__ = ["SyntheticTask", "make_synthetic_task", "lexical_scores", "VOCABULARY"]

_CONCEPTS = (
    "apple river castle falcon piano glacier lantern tiger violin desert harbor meadow rocket candle "
    "dragon forest island jungle kettle ladder mirror needle orchard parrot rabbit saddle tractor "
    "umbrella volcano wagon zebra bridge cactus dolphin engine feather garden hammer cottage compass"
).split()
_CATEGORIES = "animal plant tool music weather building vehicle landscape".split()
_TEMPLATES = (
    "tell me about the {c}",
    "what is known about a {c}",
    "facts about the {c}",
    "find information on {c}",
    "describe the {c} please",
    "what makes a {c} special",
    "give details about {c}",
    "explain the {c} to me",
)
_TEMPLATE_WORDS = sorted({w for t in _TEMPLATES for w in t.split() if w != "{c}"})
# Attribute and filler words: ordinary words, disjoint from concepts, categories and templates.
_POOL = (
    "red blue green yellow purple orange silver golden dark bright quiet loud soft hard warm cold "
    "heavy light tall short wide narrow deep shallow round square sharp smooth rough wet dry fresh "
    "old young ancient modern fast slow strong weak rich poor sweet bitter salty sour clean dirty "
    "empty full hidden open closed broken wooden stone metal glass paper cotton wool leather silk "
    "iron copper steel gold salt sugar honey milk bread cheese butter rice corn wheat grass leaf "
    "branch root seed flower thorn bark shell bone tooth claw wing tail fur skin horn nest "
    "cave hill valley shore beach cliff pond lake stream ocean wave tide storm rain snow ice fog "
    "wind cloud thunder lightning sun moon star shadow dawn dusk night morning evening summer "
    "winter spring autumn north south east west city village town street road path gate wall roof "
    "floor door window tower chamber hall kitchen table chair bed shelf box basket bottle cup bowl "
    "plate spoon knife fork rope chain wire wheel gear lever spring brush paint ink pen book letter "
    "map coin ring crown sword shield arrow bow drum bell flute harp song dance story dream game "
    "king queen knight farmer sailor doctor teacher child mother father friend stranger soldier "
    "pilot driver baker painter singer hunter fisher merchant thief guard priest student worker "
    "circle line corner edge center border surface layer piece part half pair group crowd family "
    "market school church museum library station factory prison hospital office farm mill mine "
    "port camp field yard fence tent flag sign symbol number color shape sound smell taste touch "
    "voice word name price value weight height length speed power energy heat fire smoke dust "
    "mud sand clay rock metal coal oil gas steam water juice tea coffee wine soup meat fish egg"
).split()
VOCABULARY: tuple[str, ...] = tuple(sorted(set(_CONCEPTS) | set(_CATEGORIES) | set(_TEMPLATE_WORDS) | set(_POOL)))
_MAX_WORDS = 32


@dataclass
class SyntheticTask:
    """The generated task: lists per split plus the TREC-style pieces (qrels, corpus, queries, run).

    ``qrels``: qid -> docid -> grade (0-3, every candidate judged); ``first_stage_run``: qid -> docid
    -> lexical score (the order of the lists' documents); ``concepts``: qid -> concept word.
    """

    train: list[RankingList]
    test: list[RankingList]
    qrels: dict[str, dict[str, int]]
    corpus: dict[str, Doc]
    queries: dict[str, str]
    first_stage_run: dict[str, dict[str, float]]
    concepts: dict[str, str] = field(default_factory=dict)

    def split_qids(self, split: str) -> list[str]:
        lists = {"train": self.train, "test": self.test}.get(split)
        if lists is None:
            raise ValueError(f"split {split!r}; expected 'train' or 'test'")
        return [rl.qid for rl in lists]

    def evaluate(self, run: dict[str, dict[str, float]], split: str = "test", measure: str = "nDCG@10") -> float:
        """``measure`` (an ir-measures name) of ``run`` over the queries of ``split``."""
        import ir_measures

        qids = set(self.split_qids(split))
        qrels = {q: d for q, d in self.qrels.items() if q in qids}
        run = {q: d for q, d in run.items() if q in qids}
        return float(
            ir_measures.calc_aggregate([ir_measures.parse_measure(measure)], qrels, run)[
                ir_measures.parse_measure(measure)
            ]
        )

    def first_stage_ndcg(self, split: str = "test", k: int = 10) -> float:
        """nDCG@k of the lexical first stage (the "before" number of the demo)."""
        return self.evaluate(self.first_stage_run, split, f"nDCG@{k}")

    def oracle_ndcg(self, split: str = "test", k: int = 10) -> float:
        """nDCG@k of ranking by the true grades (1.0 unless a query has no relevant document)."""
        run = {q: {d: float(r) for d, r in docs.items()} for q, docs in self.qrels.items()}
        return self.evaluate(run, split, f"nDCG@{k}")

    def save(self, folder: str | Path) -> Path:
        """Write a BEIR-style folder (corpus.jsonl, queries.jsonl, qrels/{train,test}.tsv) plus
        ``run.trec`` (the lexical first stage), readable by the ``beir`` / ``trec`` readers."""
        folder = Path(folder)
        (folder / "qrels").mkdir(parents=True, exist_ok=True)
        with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
            for doc in self.corpus.values():
                f.write(json.dumps({"_id": doc.docid, "title": "", "text": doc.text}) + "\n")
        with open(folder / "queries.jsonl", "w", encoding="utf-8") as f:
            for qid, text in self.queries.items():
                f.write(json.dumps({"_id": qid, "text": text}) + "\n")
        for split in ("train", "test"):
            with open(folder / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as f:
                f.write("query-id\tcorpus-id\tscore\n")
                for qid in self.split_qids(split):
                    for docid, grade in self.qrels[qid].items():
                        f.write(f"{qid}\t{docid}\t{grade}\n")
        with open(folder / "run.trec", "w", encoding="utf-8") as f:
            for qid, docs in self.first_stage_run.items():
                ranked = sorted(docs.items(), key=lambda x: -x[1])
                for rank, (docid, score) in enumerate(ranked, start=1):
                    f.write(f"{qid} Q0 {docid} {rank} {score:.6f} lexical\n")
        return folder


def lexical_scores(query: str, texts: list[str], df: Counter[str], num_docs: int) -> list[float]:
    """Idf-weighted saturated term overlap, a BM25-like first stage: sum_t idf(t) * tf / (tf + 1)."""
    terms = set(query.split())
    out = []
    for text in texts:
        tf = Counter(text.split())
        out.append(sum(math.log(1 + num_docs / (1 + df[t])) * tf[t] / (tf[t] + 1.0) for t in terms if tf[t]))
    return out


def _text(rng: random.Random, core: list[str], fillers: list[str], lo: int = 10, hi: int = 20) -> str:
    length = min(_MAX_WORDS, max(len(core) + 2, rng.randint(lo, hi)))
    words = core + rng.choices(fillers, k=length - len(core))
    rng.shuffle(words)
    return " ".join(words)


def make_synthetic_task(
    num_queries: int = 200,
    docs_per_query: int = 24,
    seed: int = 0,
    test_fraction: float = 0.25,
    num_concepts: int | None = None,
    attributes_per_concept: int = 4,
) -> SyntheticTask:
    """Generate the task deterministically from ``seed`` (see the module docstring).

    ``num_concepts`` defaults to ``min(40, num_queries // 4)``; queries cycle through the concepts,
    and each concept's queries are split train/test so every test concept was seen in training.
    ``docs_per_query`` must be at least 12 (room for every grade and the distractors).
    """
    if docs_per_query < 12:
        raise ValueError(f"docs_per_query={docs_per_query}; need at least 12")
    n_concepts = num_concepts or max(2, min(len(_CONCEPTS), num_queries // 4))
    if not 2 <= n_concepts <= len(_CONCEPTS):
        raise ValueError(f"num_concepts={n_concepts}; must be between 2 and {len(_CONCEPTS)}")
    if num_queries < 2 * n_concepts:
        raise ValueError(f"num_queries={num_queries}; need at least 2 per concept ({2 * n_concepts})")

    rng = random.Random(seed)
    concepts = rng.sample(_CONCEPTS, n_concepts)
    reserved = set(_CONCEPTS) | set(_CATEGORIES) | set(_TEMPLATE_WORDS)
    pool = [w for w in dict.fromkeys(_POOL) if w not in reserved]
    rng.shuffle(pool)
    n_attr = n_concepts * attributes_per_concept
    if n_attr > len(pool) - 60:
        raise ValueError("too many attributes for the word pool; lower num_concepts or attributes_per_concept")
    attributes = {
        c: pool[i * attributes_per_concept : (i + 1) * attributes_per_concept] for i, c in enumerate(concepts)
    }
    fillers = pool[n_attr:]
    category = {c: _CATEGORIES[i % len(_CATEGORIES)] for i, c in enumerate(concepts)}

    queries: dict[str, str] = {}
    concept_of: dict[str, str] = {}
    candidates: dict[str, list[tuple[str, int]]] = {}  # qid -> [(text, grade)]
    by_concept: dict[str, list[str]] = {c: [] for c in concepts}
    for i in range(num_queries):
        qid = f"syn{i:04d}"
        c = concepts[i % n_concepts]
        template = rng.choice(_TEMPLATES)
        queries[qid], concept_of[qid] = template.format(c=c), c
        by_concept[c].append(qid)
        qwords = [w for w in template.split() if w != "{c}"]
        others = [o for o in concepts if o != c]
        n = docs_per_query
        plan = [3] * rng.randint(1, 2) + [2] * rng.randint(1, 2) + [1] * rng.randint(1, 3)
        n_distract = max(3, n // 3)
        docs: list[tuple[str, int]] = []
        for grade in plan:
            if grade == 3:
                core = rng.sample(attributes[c], rng.randint(2, 3))
            elif grade == 2:
                core = [rng.choice(attributes[c])]
            else:
                core = [category[c]]
            if rng.random() < 0.3:  # an incidental query word, as real relevant passages have
                core.append(rng.choice(qwords))
            docs.append((_text(rng, core, fillers), grade))
        for _ in range(n_distract):
            other = rng.choice(others)
            core = [c] * rng.randint(1, 2) + rng.sample(qwords, min(len(qwords), rng.randint(1, 3)))
            core += rng.sample(attributes[other], rng.randint(1, 2))
            docs.append((_text(rng, core, fillers), 0))
        while len(docs) < n:
            other = rng.choice(others)
            core = rng.sample(attributes[other], rng.randint(1, 3))
            if rng.random() < 0.3:
                core.append(rng.choice(_TEMPLATE_WORDS))
            docs.append((_text(rng, core, fillers), 0))
        rng.shuffle(docs)
        candidates[qid] = docs

    test_qids: set[str] = set()
    for qids in by_concept.values():
        k = min(len(qids) - 1, max(1, round(len(qids) * test_fraction)))
        test_qids.update(rng.sample(qids, k))

    df: Counter[str] = Counter()
    for docs in candidates.values():
        for text, _ in docs:
            df.update(set(text.split()))
    num_docs = sum(len(d) for d in candidates.values())

    corpus: dict[str, Doc] = {}
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    train: list[RankingList] = []
    test: list[RankingList] = []
    for qid, docs in candidates.items():
        texts = [t for t, _ in docs]
        # a small deterministic jitter breaks ties without favouring any grade; rounding first makes
        # the saved run (6 decimals) sort exactly like the lists
        lexical = lexical_scores(queries[qid], texts, df, num_docs)
        scores = [round(s + 1e-4 * rng.random(), 6) for s in lexical]
        order = sorted(range(len(docs)), key=lambda j: (-scores[j], j))
        ranked = [Doc(f"{qid}_d{j:02d}", texts[j]) for j in order]
        for doc in ranked:
            corpus[doc.docid] = doc
        qrels[qid] = {f"{qid}_d{j:02d}": docs[j][1] for j in range(len(docs))}
        run[qid] = {f"{qid}_d{j:02d}": scores[j] for j in range(len(docs))}
        rl = RankingList(
            qid=qid,
            query=queries[qid],
            docs=ranked,
            labels=[float(docs[j][1]) for j in order],
            meta={"first_stage_scores": [scores[j] for j in order], "concept": concept_of[qid]},
        )
        (test if qid in test_qids else train).append(rl)
    return SyntheticTask(train, test, qrels, corpus, queries, run, concept_of)
