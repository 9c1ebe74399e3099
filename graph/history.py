"""Run history: every attempt's worker, model, verdict, tokens, cost and latency, across runs.

Rows live in the LangGraph store the graph runs with (`("foreman", "history")`), which is
in the same database as the checkpoints: the CLI's SQLite or PostgreSQL, or the LangGraph
server's. The orchestrator reads them back as a `History`, per worker × model and per
capability × model, to pick a model (the cascade), estimate a cost before spending
(budgets) and know when an attempt is late (hedging). `foreman stats` shows them.

The rows, their statistics and reading them back are in `foreman.core.history` (the CLI
reads them without the graph); this module adds what a run does: write a subtask's rows,
and keep a view of the history current.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from langgraph.store.base import BaseStore, PutOp

from foreman.core.history import (
    ACCEPTED,
    JUDGED,
    MOST_ROWS,
    NAMESPACE,
    PAGE,
    AttemptRow,
    History,
    Stats,
    load_rows,
    quantile,
)
from foreman.core.state import SubtaskRecord

__all__ = [
    "ACCEPTED",
    "JUDGED",
    "MOST_ROWS",
    "NAMESPACE",
    "PAGE",
    "AttemptRow",
    "History",
    "Stats",
    "forget_views",
    "history_of",
    "load_rows",
    "quantile",
    "record_attempts",
    "rows_of",
]

REFRESH_S = 30.0  # rows other processes wrote are seen after this long


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


# One view per store, kept current by this process's own writes and reloaded now and then
# for other processes' (keyed by the store object: each database has its own history).
_VIEWS: dict[int, History] = {}
_LOCAL = object()  # the key of runs without a store: history for this process only


async def history_of(store: BaseStore | None) -> History:
    """The history a run sees: its store's, else this process's own."""
    key = id(store) if store is not None else id(_LOCAL)
    view = _VIEWS.get(key)
    if view is None:
        view = History(await load_rows(store)) if store is not None else History()
        _VIEWS[key] = view
    elif store is not None and time.monotonic() - view.loaded_at > REFRESH_S:
        # one reload at a time: the subtasks starting meanwhile go on with the view as it is
        view.loaded_at = time.monotonic()
        view = _VIEWS[key] = History(await load_rows(store))
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
    if store is None and view.rows > MOST_ROWS:  # no store reloads it: start again, bounded
        _VIEWS[id(_LOCAL)] = History()
    if store is not None:
        await store.abatch(
            [PutOp(NAMESPACE, uuid.uuid4().hex, dict(row), index=False) for row in rows]
        )


def forget_views() -> None:
    """Drop the in-process views (tests: a fresh history per test)."""
    _VIEWS.clear()
