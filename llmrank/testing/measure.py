"""Measuring a benchmark run: resident memory, wall time of a block, package versions (light:
importing this module loads neither torch nor transformers; the training-step timer is in
:mod:`llmrank.testing.trainer_probes`).

Memory on Linux: ``/proc/self/status`` gives the resident set size (``VmRSS``) and its high-water
mark (``VmHWM``); writing ``5`` to ``/proc/self/clear_refs`` resets the mark to the current RSS, so
a peak read later belongs to the measured span rather than to model loading. Where the reset is
not allowed, ``getrusage(RUSAGE_SELF).ru_maxrss`` (the whole process's peak, KiB) stands in.
"""

from __future__ import annotations

import contextlib
import platform
import resource
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def status_kb(field: str) -> int | None:
    """A ``/proc/self/status`` field in KiB (``VmRSS``, ``VmHWM``), or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_kb() -> int:
    """``VmHWM`` (since the last :func:`reset_peak_rss`), else the process's ``ru_maxrss``."""
    return status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def package_versions(*packages: str) -> dict[str, str]:
    """Python's and each installed package's version ("not installed" for a missing one)."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


@contextlib.contextmanager
def timed(times: dict[str, float], name: str) -> Iterator[None]:
    """Record the wall time of the block under ``times[name]`` (seconds, 0.1 s) and print it."""
    t0 = time.perf_counter()
    yield
    times[name] = round(time.perf_counter() - t0, 1)
    print(f"[{name}] {times[name]:.1f}s", flush=True)
