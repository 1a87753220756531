"""Probes for the benchmarks: a per-step wall/CPU/memory timer (a Trainer callback, given to
``run_training(recipe, callbacks=[...])`` or to any Trainer) and the key of a batch of lists
(``run_training(recipe, on_batch=...)`` records what was trained on)."""

from __future__ import annotations

import resource
import statistics
import time
from typing import Any

from transformers import TrainerCallback

from llmrank.testing.measure import reset_peak_rss, status_kb


class StepTimer(TrainerCallback):
    """Wall and CPU clocks at the start of training and at the end of every optimizer step
    (``wall[k]`` is the end of step k), and resident memory while training; ``summary`` times the
    steps after the first ``warmup``."""

    def __init__(self, warmup: int = 0) -> None:
        self.warmup = warmup
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.memory: dict[str, Any] = {}

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001
        if reset_peak_rss():
            method = "VmHWM since train begin (reset via /proc/self/clear_refs)"
        else:
            method = "ru_maxrss of the process (model load included)"
        self.memory = {"method": method, "rss_at_train_begin_kb": status_kb("VmRSS")}
        self.on_step_end(args, state, control)

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001
        hwm = status_kb("VmHWM") if self.memory["method"].startswith("VmHWM") else None
        self.memory["peak_rss_kb"] = hwm or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def summary(self, pairs_per_step: int) -> dict[str, Any]:
        """Steps run, seconds and pairs/s (wall, CPU, median step) of the timed steps, peak memory."""
        warmup = self.warmup
        steps_run = len(self.wall) - 1
        if steps_run <= warmup:
            raise RuntimeError(f"only {steps_run} steps ran; need more than --warmup={warmup}")
        timed_steps = steps_run - warmup
        wall_s = self.wall[-1] - self.wall[warmup]
        cpu_s = self.cpu[-1] - self.cpu[warmup]
        median = statistics.median(b - a for a, b in zip(self.wall[warmup:], self.wall[warmup + 1 :]))
        peak, begin = self.memory["peak_rss_kb"], self.memory["rss_at_train_begin_kb"] or 0
        return {
            "steps_run": steps_run,
            "timed_steps": timed_steps,
            "wall_s": round(wall_s, 3),
            "pairs_per_s": round(timed_steps * pairs_per_step / wall_s, 2),
            "cpu_s": round(cpu_s, 3),
            "pairs_per_cpu_s": round(timed_steps * pairs_per_step / cpu_s, 2),
            "median_step_s": round(median, 4),
            "pairs_per_s_median_step": round(pairs_per_step / median, 2),
            "peak_rss_mb": round(peak / 1024, 1),
            "rss_at_train_begin_mb": round(begin / 1024, 1),
            "peak_increase_mb": round((peak - begin) / 1024, 1),
            "memory_method": self.memory["method"],
        }


def batch_keys(batch: list[Any]) -> list[tuple[str, tuple[str, ...]]]:
    """What identifies a batch of groups: each group's query id and document ids, in order."""
    return [(g.qid, tuple(d.docid for d in g.docs)) for g in batch]
