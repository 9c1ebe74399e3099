"""Bring the shared database to head once, before any Aegra instance starts.

Run with the Aegra virtualenv's Python (`cluster.py` does), `DATABASE_URL` set. Two parts:
Aegra's own tables (alembic; instances skip this with `RUN_MIGRATIONS_ON_STARTUP=false`) and
LangGraph's checkpoint and store tables. Every instance still calls LangGraph's `setup()` at
startup; on a fresh database two instances doing so at once deadlock in PostgreSQL, so the
tables are made here first and the instances' calls find nothing to do.
"""

from __future__ import annotations

import asyncio

from aegra_api.core.migrations import run_migrations
from aegra_api.settings import settings
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.store.postgres.aio import AsyncPostgresStore


async def setup_langgraph(url: str) -> None:
    """Create (or upgrade) LangGraph's checkpoint and store tables."""
    async with AsyncPostgresSaver.from_conn_string(url) as saver:
        await saver.setup()
    async with AsyncPostgresStore.from_conn_string(url) as store:
        await store.setup()


if __name__ == "__main__":
    run_migrations()
    asyncio.run(setup_langgraph(settings.db.database_url_sync))
