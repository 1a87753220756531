"""Data: the canonical RankingList record, readers, group sampling and the synthetic task."""

from llmrank.data.readers import (
    beir_training_lists,
    content_docid,
    iter_lists_jsonl,
    load_source,
    read_beir,
    read_group_jsonl,
    read_hf,
    read_lists_jsonl,
    read_rankllm,
    read_trec,
    register_reader,
    registered_formats,
    write_lists_jsonl,
)
from llmrank.data.record import Doc, RankingList
from llmrank.data.sampling import EvalDataset, GroupDataset, collate_lists, subset_with_meta, truncate_lists
from llmrank.data.synthetic import SyntheticTask, make_synthetic_task

__all__ = [
    "Doc",
    "EvalDataset",
    "GroupDataset",
    "RankingList",
    "SyntheticTask",
    "beir_training_lists",
    "collate_lists",
    "content_docid",
    "iter_lists_jsonl",
    "load_source",
    "make_synthetic_task",
    "read_beir",
    "read_group_jsonl",
    "read_hf",
    "read_lists_jsonl",
    "read_rankllm",
    "read_trec",
    "register_reader",
    "registered_formats",
    "subset_with_meta",
    "truncate_lists",
    "write_lists_jsonl",
]
