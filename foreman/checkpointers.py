"""Opens what a `--db` option names: SQLite by default, PostgreSQL by URL.

Each database holds LangGraph's checkpoint tables and, beside them, a LangGraph store where
large worker outputs are kept once by content (`foreman.orchestration.outputs`). PostgreSQL's
classes are imported only for a `postgresql://` database: they come with the postgres extra,
and without it opening one raises `MissingExtra` naming it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

from foreman.core.extras import require_postgres
from foreman.databases import opened
from foreman.listing import thread_ids
from foreman.savers import KeepsOutputsInStep, SqliteSaver
from foreman.stores import open_store

__all__ = ["open_checkpointer", "open_persistence", "open_store", "thread_ids"]


def _postgres_saver() -> Any:
    require_postgres()
    from foreman.postgres import PostgresSaver

    return PostgresSaver


@asynccontextmanager
async def open_checkpointer(db: str) -> AsyncIterator[BaseCheckpointSaver]:
    """Open (and create the tables of) the checkpointer for `db`.

    On its own it deletes and copies checkpoints only; `open_persistence` gives it the store
    so that stored outputs follow (`foreman.savers`).
    """
    async with opened(db, _postgres_saver, SqliteSaver) as saver:
        yield saver


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
