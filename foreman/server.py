"""The persistence the LangGraph server (`langgraph dev`, `langgraph up`) runs Foreman with.

`langgraph.json` names `checkpointer` and `store` below (`"checkpointer": {"path": ...}`,
`"store": {"path": ...}`); the server enters each once at startup and closes it at shutdown.
Both live in the database `FOREMAN_DB` names, the same spec as the CLI's `--db`:
`sqlite:PATH` (default `sqlite:.foreman/foreman.sqlite`, relative to the server's working
directory) or a `postgresql://` URL. The CLI can then read the threads the server ran, and
the large worker outputs a checkpoint refers to (`graph/outputs.py`) sit in the same database.
Without `FOREMAN_DB`, a server that was given a PostgreSQL `DATABASE_URI` (LangGraph
Platform's replicas are) uses that, so replicas share one database instead of each writing
its own SQLite file.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

from foreman.checkpointers import open_persistence, open_store
from foreman.databases import default_db, is_postgres


def server_db() -> str:
    """`FOREMAN_DB`, else the server's own PostgreSQL `DATABASE_URI`, else the SQLite default."""
    platform = os.environ.get("DATABASE_URI", "")
    if "FOREMAN_DB" not in os.environ and is_postgres(platform):
        return platform
    return default_db()


@asynccontextmanager
async def checkpointer() -> AsyncIterator[BaseCheckpointSaver]:
    """Open the checkpointer `FOREMAN_DB` names, creating its tables if needed.

    It holds its own connection to the store, so that a thread the server deletes or copies
    takes its stored outputs along (`foreman.savers`).
    """
    async with open_persistence(server_db()) as (saver, _store):
        yield saver


@asynccontextmanager
async def store() -> AsyncIterator[BaseStore]:
    """Open the store beside that checkpointer, creating its tables if needed."""
    async with open_store(server_db()) as opened:
        yield opened
