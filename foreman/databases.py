"""What a `--db` spec names, without opening anything.

The CLI reads this before it imports LangGraph, so `foreman --help` starts fast.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

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
async def opened(db: str, postgres: Callable[[], Any], sqlite: Any) -> AsyncIterator[Any]:
    """Open a saver or store class on `db` and create its tables.

    Args:
        db: `sqlite:PATH` or a PostgreSQL URL.
        postgres: Returns the PostgreSQL class (imported only when `db` is PostgreSQL).
        sqlite: The SQLite class.

    Raises:
        MissingExtra: `db` is PostgreSQL and the postgres extra is not installed.
    """
    if is_postgres(db):
        kind, target = postgres(), db
    else:
        path = sqlite_path(db)
        path.parent.mkdir(parents=True, exist_ok=True)
        kind, target = sqlite, str(path)
    async with kind.from_conn_string(target) as store_or_saver:
        await store_or_saver.setup()
        yield store_or_saver
