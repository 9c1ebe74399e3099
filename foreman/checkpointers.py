"""Opens what a `--db` option names: SQLite by default, PostgreSQL by URL.

Each database holds LangGraph's checkpoint tables and, beside them, a LangGraph store where
large worker outputs are kept once by content (`foreman.orchestration.outputs`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.store.base import BaseStore
from langgraph.store.postgres.aio import AsyncPostgresStore

from foreman.databases import is_postgres, sqlite_path
from foreman.savers import KeepsOutputsInStep, PostgresSaver, SqliteSaver
from foreman.stores import SqliteStore


@asynccontextmanager
async def _opened(db: str, postgres: Any, sqlite: Any) -> AsyncIterator[Any]:
    """Open `postgres` or `sqlite` (a saver or store class) on `db` and create its tables."""
    if is_postgres(db):
        kind, target = postgres, db
    else:
        path = sqlite_path(db)
        path.parent.mkdir(parents=True, exist_ok=True)
        kind, target = sqlite, str(path)
    async with kind.from_conn_string(target) as opened:
        await opened.setup()
        yield opened


@asynccontextmanager
async def open_checkpointer(db: str) -> AsyncIterator[BaseCheckpointSaver]:
    """Open (and create the tables of) the checkpointer for `db`.

    On its own it deletes and copies checkpoints only; `open_persistence` gives it the store
    so that stored outputs follow (`foreman.savers`).
    """
    async with _opened(db, PostgresSaver, SqliteSaver) as saver:
        yield saver


@asynccontextmanager
async def open_store(db: str) -> AsyncIterator[BaseStore]:
    """Open (and create the tables of) the store in the same database as the checkpointer."""
    async with _opened(db, AsyncPostgresStore, SqliteStore) as store:
        yield store


@asynccontextmanager
async def open_persistence(db: str) -> AsyncIterator[tuple[BaseCheckpointSaver, BaseStore]]:
    """The checkpointer and the store of `db`, opened together and kept in step."""
    async with open_checkpointer(db) as saver, open_store(db) as store:
        keeper = saver if isinstance(saver, KeepsOutputsInStep) else None
        if keeper is not None:
            keeper.outputs_store = store
        try:
            yield saver, store
        finally:
            # Let the store go when its context closes: held by the saver, it would wait for
            # the cycle collector, and its batching task could outlive the event loop.
            if keeper is not None:
                keeper.outputs_store = None


async def thread_ids(saver: BaseCheckpointSaver) -> list[str]:
    """Every thread with a checkpoint, most recently updated first."""
    query = (
        "SELECT thread_id, MAX(checkpoint_id) AS last FROM checkpoints "
        "WHERE checkpoint_ns = '' GROUP BY thread_id ORDER BY last DESC"
    )
    if isinstance(saver, AsyncSqliteSaver):
        async with saver.conn.execute(query) as cur:
            return [row[0] for row in await cur.fetchall()]
    assert isinstance(saver, AsyncPostgresSaver)
    async with saver._cursor() as cur:  # the saver's own connection handling
        await cur.execute(query)
        return [row["thread_id"] for row in await cur.fetchall()]
