"""SQLite and PostgreSQL persistence for tests that run the graph on both backends.

PostgreSQL tests use a database of their own (created if missing), so deleting or expiring
threads never touches another test's data in the shared `test` database. The fixtures are
registered in `tests/conftest.py` (`pytest_plugins`); `start` is imported.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from foreman import Context, build_graph
from foreman.checkpointers import open_persistence
from tests.conftest import HEAT_PUMPS

PG_ADMIN = os.environ.get("FOREMAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# One database per pytest-xdist worker: tests empty it, so workers must not share one.
PG_DB = f"foreman_housekeeping_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
PG_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes", "store")


def pg_url() -> str:
    """The URL of the tests' own PostgreSQL database, created if missing."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DB,)).fetchone()
        if not found:
            conn.execute(f'CREATE DATABASE "{PG_DB}"')
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_DB}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_db(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A database spec: a fresh SQLite file, then the PostgreSQL test database."""
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'runs.sqlite'}"
    return pg_url()


@pytest.fixture
async def persistence(backend_db: str) -> AsyncIterator[tuple[Any, Any]]:
    """The graph compiled with the checkpointer and store of `backend_db`, and the store.

    The PostgreSQL test database starts empty each time: outputs are shared by content, so
    a thread another test left behind would change which outputs a deletion may drop.
    """
    async with open_persistence(backend_db) as (saver, store):
        if backend_db.startswith("postgresql://"):
            with psycopg.connect(backend_db, autocommit=True) as conn:
                conn.execute(f"TRUNCATE {', '.join(PG_TABLES)}")
        yield build_graph().compile(checkpointer=saver, store=store), store


async def start(app: Any, request: str = HEAT_PUMPS, **config: Any) -> str:
    """Run `request` to the end on a new thread (offline models); return the thread id."""
    thread = f"hk-{uuid.uuid4().hex[:10]}"
    config = {**config, "configurable": {"thread_id": thread}}
    out = await app.ainvoke({"request": request}, config, context=Context())
    assert out["status"] == "done"
    return thread
