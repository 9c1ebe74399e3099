"""`foreman threads`: the runs in a database, read from the checkpointer alone.

Listing needs no graph: a thread's status is in its latest checkpoint (the `status` channel,
the nodes still triggered, the interrupts among its pending writes), so this opens a plain
LangGraph saver and imports neither the graph, the models nor the workers. It starts in
about half a second where compiling the graph took seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from foreman.core.extras import require_postgres
from foreman.databases import opened

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

# LangGraph's names for what a checkpoint holds besides the state's own channels.
_TRIGGER = "branch:to:"
_PUSHES = "__pregel_tasks"
_INTERRUPT = "__interrupt__"


@dataclass
class ThreadInfo:
    """One thread as `foreman threads` shows it."""

    thread_id: str
    updated_at: float
    """Unix time of its latest checkpoint."""
    status: str
    request: str


def _postgres_reader() -> Any:
    require_postgres()
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    return AsyncPostgresSaver


@asynccontextmanager
async def open_reader(db: str) -> AsyncIterator[BaseCheckpointSaver]:
    """LangGraph's own saver on `db`, for reading (tables created if missing).

    Raises:
        MissingExtra: `db` is PostgreSQL and the postgres extra is not installed.
    """
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with opened(db, _postgres_reader, AsyncSqliteSaver) as saver:
        yield saver


async def thread_ids(saver: BaseCheckpointSaver) -> list[str]:
    """Every thread with a checkpoint, most recently updated first."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    query = (
        "SELECT thread_id, MAX(checkpoint_id) AS last FROM checkpoints "
        "WHERE checkpoint_ns = '' GROUP BY thread_id ORDER BY last DESC"
    )
    if isinstance(saver, AsyncSqliteSaver):
        async with saver.conn.execute(query) as cur:
            return [row[0] for row in await cur.fetchall()]
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    assert isinstance(saver, AsyncPostgresSaver)
    async with saver._cursor() as cur:  # the saver's own connection handling
        await cur.execute(query)
        return [row["thread_id"] for row in await cur.fetchall()]


def _kind(interrupt: Any) -> str:
    value = getattr(interrupt, "value", interrupt)
    return str(value.get("kind", "?")) if isinstance(value, dict) else "?"


def checkpoint_status(found: CheckpointTuple) -> str:
    """What `foreman show` calls a thread's status, from its latest checkpoint alone.

    Paused (interrupts pending), stopped with nodes still to run (resumable), or the run's
    own `status`: the same words as `foreman.housekeeping.thread_status` reads off the graph.
    """
    interrupts = [
        item
        for _task, channel, value in found.pending_writes or []
        if channel == _INTERRUPT
        for item in (value if isinstance(value, list | tuple) else [value])
    ]
    if interrupts:
        return f"paused, waiting: {', '.join(dict.fromkeys(_kind(i) for i in interrupts))}"
    values = found.checkpoint["channel_values"]
    pending = [key.removeprefix(_TRIGGER) for key in values if key.startswith(_TRIGGER)]
    pending += [getattr(push, "node", "?") for push in values.get(_PUSHES) or []]
    if pending:
        return f"stopped at {', '.join(dict.fromkeys(pending))} (resumable)"
    return str(values.get("status", "?"))


async def list_threads(saver: BaseCheckpointSaver, limit: int) -> list[ThreadInfo]:
    """Threads with their status, most recently updated first, at most `limit`."""
    rows = []
    for tid in (await thread_ids(saver))[:limit]:
        found = await saver.aget_tuple({"configurable": {"thread_id": tid}})
        if found is None:  # deleted since the ids were read
            continue
        updated = datetime.fromisoformat(found.checkpoint["ts"]).timestamp()
        request = found.checkpoint["channel_values"].get("request", "")
        rows.append(ThreadInfo(tid, updated, checkpoint_status(found), str(request or "")))
    return rows
