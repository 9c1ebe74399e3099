"""Run history: every attempt's worker, model, verdict, tokens, cost and latency, across runs.

Rows live in the LangGraph store the graph runs with (`("foreman", "history")`), which is
in the same database as the checkpoints: the CLI's SQLite or PostgreSQL, or the LangGraph
server's. The orchestrator reads them back as a `History`, per worker × model and per
capability × model, to pick a model (the cascade), estimate a cost before spending
(budgets) and know when an attempt is late (hedging). `foreman stats` shows them.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from langgraph.store.base import BaseStore, PutOp
from typing_extensions import TypedDict

from foreman.core.state import SubtaskRecord

NAMESPACE = ("foreman", "history")
PAGE = 1000
MOST_ROWS = 20_000  # read back at most this many (a store search has no order to trust)
REFRESH_S = 30.0  # rows other processes wrote are seen after this long
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


def rows_of(record: SubtaskRecord, capability: dict[str, str], thread_id: str) -> list[AttemptRow]:
    """The rows a finished subtask adds: one per attempt the validator judged."""
    rows: list[AttemptRow] = []
    for att in record["attempts"]:
        extra: dict[str, Any] = dict(att)
        if att["verdict"] not in JUDGED and not extra.get("cached"):
            continue  # a question for a person, a cancelled hedge: nothing to learn
        usage = att["usage"]
        rows.append(
            {
                "worker": att["worker"],
                "model": att["model"],
                "capability": capability.get(att["worker"], att["worker"]),
                "verdict": att["verdict"],
                "accepted": att["verdict"] in ACCEPTED,
                "input_tokens": usage["input_tokens"],
                "output_tokens": usage["output_tokens"],
                "cost_usd": usage["cost_usd"],
                "latency_s": att["duration_s"],
                "started_at": att["started_at"],
                "thread_id": thread_id,
                "subtask_id": record["id"],
                "attempt": att["n"],
                "hedged": bool(extra.get("hedged")),
                "cached": bool(extra.get("cached")),
            }
        )
    return rows


def quantile(values: list[float], q: float) -> float | None:
    """The `q` quantile (0-1) of sorted `values`, nearest rank; None when empty."""
    if not values:
        return None
    rank = max(1, math.ceil(q * len(values)))
    return values[min(rank, len(values)) - 1]


@dataclass
class Stats:
    """What the history says of one worker (or capability) on one model."""

    attempts: int = 0
    accepted: int = 0
    costs: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    output_tokens: list[int] = field(default_factory=list)

    def add(self, row: AttemptRow) -> None:
        """Count one attempt (a cache hit says nothing of the model's speed or price)."""
        if row["cached"]:
            return
        self.attempts += 1
        self.accepted += row["accepted"]
        self.costs.append(row["cost_usd"])
        _insert(self.latencies, row["latency_s"])
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


def _insert(values: list[float], value: float) -> None:
    """Insert keeping `values` sorted (latency quantiles are read on every attempt)."""
    import bisect

    bisect.insort(values, value)


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


# One view per store, kept current by this process's own writes and reloaded now and then
# for other processes' (keyed by the store object: each database has its own history).
_VIEWS: dict[int, History] = {}
_LOCAL = object()  # the key of runs without a store: history for this process only


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


async def history_of(store: BaseStore | None) -> History:
    """The history a run sees: its store's, else this process's own."""
    key = id(store) if store is not None else id(_LOCAL)
    view = _VIEWS.get(key)
    if view is None or (store is not None and time.monotonic() - view.loaded_at > REFRESH_S):
        view = History(await load_rows(store)) if store is not None else History()
        _VIEWS[key] = view
    return view


async def record_attempts(
    store: BaseStore | None, record: SubtaskRecord, capability: dict[str, str], thread_id: str
) -> None:
    """Add a finished subtask's attempts to the history (the store's and the view's)."""
    rows = rows_of(record, capability, thread_id)
    if not rows:
        return
    view = await history_of(store)
    view.add(rows)
    if store is not None:
        await store.abatch(
            [PutOp(NAMESPACE, uuid.uuid4().hex, dict(row), index=False) for row in rows]
        )


def forget_views() -> None:
    """Drop the in-process views (tests: a fresh history per test)."""
    _VIEWS.clear()
