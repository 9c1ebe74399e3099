"""LangGraph's SQLite store, made safe to cancel.

`AsyncSqliteStore` runs each batch as `BEGIN` … `COMMIT` on one aiosqlite connection.
aiosqlite executes a statement in its own thread even when the coroutine awaiting it is
cancelled, so a run cancelled while its `BEGIN` was queued (a server cancel or rollback,
Ctrl-C) left an empty transaction open, and every later batch on that connection failed
with "cannot start a transaction within a transaction": the server stopped storing outputs
until restarted. This store closes such a leftover before it begins.

Its transactions begin IMMEDIATE: a batch reads, then writes (an output's uses, history
rows, cache entries), and a deferred transaction that read before the checkpointer's
connection wrote cannot take the write lock later: SQLite answers "database is locked" at
once, without waiting. Taking the lock first makes it wait its turn (the busy timeout).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
from langgraph.store.base import BaseStore
from langgraph.store.sqlite.aio import AsyncSqliteStore

from foreman.core.extras import require_postgres
from foreman.databases import opened


class SqliteStore(AsyncSqliteStore):
    """`AsyncSqliteStore` whose batches recover from a transaction a cancelled one left."""

    @asynccontextmanager
    async def _cursor(self, *, transaction: bool = True) -> AsyncIterator[aiosqlite.Cursor]:
        if not self.is_setup:
            await self.setup()
        async with self.lock:
            if transaction:
                await self._begin()
            async with self.conn.cursor() as cur:
                try:
                    yield cur
                finally:
                    if transaction:
                        await self.conn.execute("COMMIT")

    async def _begin(self) -> None:
        try:
            await self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            if not self.conn.in_transaction:
                raise
            # Statements run in order, so the leftover BEGIN has run by now, and nothing
            # after it: its batch was cancelled before its first statement.
            await self.conn.execute("ROLLBACK")
            await self.conn.execute("BEGIN IMMEDIATE")


def _postgres_store() -> Any:
    require_postgres()
    from langgraph.store.postgres.aio import AsyncPostgresStore

    return AsyncPostgresStore


@asynccontextmanager
async def open_store(db: str) -> AsyncIterator[BaseStore]:
    """Open (and create the tables of) the store in the same database as the checkpointer.

    Raises:
        MissingExtra: `db` is PostgreSQL and the postgres extra is not installed.
    """
    async with opened(db, _postgres_store, SqliteStore) as store:
        yield store
