"""Run history as data: the rows, their statistics, and reading them back from a store.

Each judged attempt of every run is one `AttemptRow` in the LangGraph store under
`("foreman", "history")`: the store the graph runs with, in the same database as the
checkpoints. The orchestrator writes them (`foreman.orchestration.history`); this module
holds what both it and `foreman stats` need, and imports neither the graph, the models nor
the workers, so `foreman stats` starts as fast as `foreman threads`.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from typing_extensions import TypedDict

if TYPE_CHECKING:
    from langgraph.store.base import BaseStore

NAMESPACE = ("foreman", "history")
PAGE = 1000
# Read back at most this many: the newest (SQLite's and PostgreSQL's stores order a search
# by `updated_at`, newest first), so what the orchestrator learns follows the models as they are.
MOST_ROWS = 20_000
# Verdicts that say whether the model did the job: an honest "nothing found" is a job done.
ACCEPTED = frozenset({"accept", "not_found"})
JUDGED = ACCEPTED | {"retry", "substitute", "give_up"}


class AttemptRow(TypedDict):
    """One attempt, as the history keeps it."""

    worker: str
    model: str
    capability: str
    verdict: str
    accepted: bool
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_s: float
    started_at: float
    thread_id: str
    subtask_id: str
    attempt: int
    hedged: bool
    cached: bool


def quantile(values: list[float], q: float) -> float | None:
    """The `q` quantile (0-1) of sorted `values`, nearest rank; None when empty.

    Example:
        >>> quantile([1.0, 2.0, 3.0, 4.0], 0.5)
        2.0
    """
    if not values:
        return None
    rank = max(1, math.ceil(q * len(values)))
    return values[min(rank, len(values)) - 1]


@dataclass
class Stats:
    """What the history says of one worker (or capability) on one model."""

    attempts: int = 0
    accepted: int = 0
    cache_hits: int = 0
    """Results reused from the cross-run cache: no attempt ran, so not in the other fields."""
    costs: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    """Sorted: quantiles are read on every attempt."""
    input_tokens: list[int] = field(default_factory=list)
    output_tokens: list[int] = field(default_factory=list)

    def add(self, row: AttemptRow) -> None:
        """Count one attempt (a cache hit says nothing of the model's speed or price)."""
        if row["cached"]:
            self.cache_hits += 1
            return
        self.attempts += 1
        self.accepted += row["accepted"]
        self.costs.append(row["cost_usd"])
        bisect.insort(self.latencies, row["latency_s"])
        self.input_tokens.append(row["input_tokens"])
        self.output_tokens.append(row["output_tokens"])

    @property
    def acceptance(self) -> float:
        """Share of attempts the validator accepted."""
        return self.accepted / self.attempts if self.attempts else 0.0

    def latency(self, q: float) -> float | None:
        """The `q` quantile of attempt latency in seconds."""
        return quantile(self.latencies, q)

    @property
    def mean_cost(self) -> float:
        """Mean cost of an attempt in USD."""
        return sum(self.costs) / len(self.costs) if self.costs else 0.0

    @property
    def total_cost(self) -> float:
        """What the attempts cost together, in USD."""
        return sum(self.costs)

    @property
    def mean_tokens(self) -> tuple[float, float]:
        """Mean input and output tokens of an attempt."""
        n = len(self.output_tokens) or 1
        return sum(self.input_tokens) / n, sum(self.output_tokens) / n


class History:
    """The attempts seen so far, aggregated per worker × model and capability × model."""

    def __init__(self, rows: Iterable[AttemptRow] = ()) -> None:
        self.by_worker: dict[tuple[str, str], Stats] = {}
        self.by_capability: dict[tuple[str, str], Stats] = {}
        self.rows = 0
        self.loaded_at = time.monotonic()
        self.add(rows)

    def add(self, rows: Iterable[AttemptRow]) -> None:
        """Count more attempts."""
        for row in rows:
            self.rows += 1
            self.by_worker.setdefault((row["worker"], row["model"]), Stats()).add(row)
            self.by_capability.setdefault((row["capability"], row["model"]), Stats()).add(row)

    def worker(self, worker: str, model: str) -> Stats:
        """The stats of a worker on a model (empty when never seen)."""
        return self.by_worker.get((worker, model), Stats())

    def capability(self, capability: str, model: str) -> Stats:
        """The stats of every worker of a capability on a model."""
        return self.by_capability.get((capability, model), Stats())


async def load_rows(store: BaseStore, most: int = MOST_ROWS) -> list[AttemptRow]:
    """Every row of the store's history, up to `most`."""
    rows: list[AttemptRow] = []
    offset = 0
    while len(rows) < most:
        items = await store.asearch(NAMESPACE, limit=PAGE, offset=offset)
        rows += [item.value for item in items]  # type: ignore[misc]
        if len(items) < PAGE:
            break
        offset += PAGE
    return rows[:most]
