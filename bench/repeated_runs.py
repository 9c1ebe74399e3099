"""Repeated, interleaved runs of the measurements, with full-GC time recorded per run.

Every measurement runs `repeats` times round-robin with its baselines so machine noise
hits them alike; each run starts after a `gc.collect()` and records the time spent in
generation-2 collections (`gc_full_ms`); `med` takes the median of one key over the runs.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any


class GcWatch:
    """Time spent in full (generation 2) garbage collections while active."""

    def __init__(self) -> None:
        self.full_ms = 0.0
        self._t0 = 0.0

    def _cb(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.full_ms += (time.perf_counter() - self._t0) * 1000

    def __enter__(self) -> GcWatch:
        gc.collect()  # every run starts from the same clean heap, whatever ran before
        gc.callbacks.append(self._cb)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._cb)


Run = Callable[[], Awaitable[dict[str, Any]]]


async def interleaved(repeats: int, runs: dict[str, Run]) -> dict[str, list[dict[str, Any]]]:
    """Run each measurement `repeats` times, round-robin, so machine noise hits all alike."""
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            with GcWatch() as watch:
                result = await run()
            out[name].append({**result, "gc_full_ms": watch.full_ms})
    return out


def med(runs: list[dict[str, Any]], key: str) -> float:
    """Median of one key over runs."""
    return statistics.median(r[key] for r in runs)
