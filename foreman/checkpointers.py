"""Opens the checkpointer a `--db` option names: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

DEFAULT_DB = "sqlite:.foreman/foreman.sqlite"


def default_db() -> str:
    """The database the CLI uses when `--db` is not given."""
    return os.environ.get("FOREMAN_DB", DEFAULT_DB)


def is_postgres(db: str) -> bool:
    """Whether `db` is a PostgreSQL URL."""
    return db.startswith(("postgres://", "postgresql://"))


def sqlite_path(db: str) -> Path:
    """The file of a `sqlite:PATH` spec (a bare path is accepted too)."""
    return Path(db.removeprefix("sqlite:")).expanduser()


@asynccontextmanager
async def open_checkpointer(db: str) -> AsyncIterator[BaseCheckpointSaver]:
    """Open (and create the tables of) the checkpointer for `db`."""
    if is_postgres(db):
        async with AsyncPostgresSaver.from_conn_string(db) as saver:
            await saver.setup()
            yield saver
        return
    path = sqlite_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        await saver.setup()
        yield saver


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
