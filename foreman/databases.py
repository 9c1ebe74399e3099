"""What a `--db` spec names, without opening anything.

The CLI reads this before it imports LangGraph, so `foreman --help` starts fast.
"""

from __future__ import annotations

import os
from pathlib import Path

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
