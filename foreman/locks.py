"""One process at a time per thread: two `foreman resume` of one run must not both run it.

Both would run the remaining subtasks, twice the cost, and each would write its own
checkpoints on top of the same parent, forking the thread. The lock lives where the
thread does and dies with the process that holds it, so a crash never leaves it behind:

- PostgreSQL: a session-level advisory lock on the thread id, held by a connection of its
  own for the length of the run (released when that session ends).
- SQLite: `flock` on a file beside the database, one per thread (released when the file
  descriptor closes, which the kernel does for a killed process too).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from foreman.core.extras import require_postgres
from foreman.databases import is_postgres, sqlite_path


class ThreadBusy(RuntimeError):
    """Another process is running this thread."""


def _key(thread: str) -> bytes:
    return hashlib.sha256(f"foreman-thread:{thread}".encode()).digest()


@asynccontextmanager
async def thread_lock(db: str, thread: str) -> AsyncIterator[None]:
    """Hold the thread's lock for the body, or raise `ThreadBusy` at once."""
    if is_postgres(db):
        async with _postgres_lock(db, thread):
            yield
    else:
        async with _file_lock(sqlite_path(db), thread):
            yield


@asynccontextmanager
async def _postgres_lock(db: str, thread: str) -> AsyncIterator[None]:
    require_postgres()
    import psycopg

    key = int.from_bytes(_key(thread)[:8], "big", signed=True)
    conn = await psycopg.AsyncConnection.connect(db, autocommit=True)
    try:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
        row = await cur.fetchone()
        if not row or not row[0]:
            raise ThreadBusy(
                f"thread {thread} is being run by another foreman process (PostgreSQL "
                "advisory lock held); wait for it to finish or stop it, then resume"
            )
        yield
    finally:
        await conn.close()  # ends the session, which releases the lock


@asynccontextmanager
async def _file_lock(database: Path, thread: str) -> AsyncIterator[None]:
    folder = database.parent / f"{database.name}.locks"
    path = folder / f"{_key(thread).hex()[:32]}.lock"

    def acquire() -> int:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ThreadBusy(
                f"thread {thread} is being run by another foreman process (pid {holder}); "
                "wait for it to finish or stop it, then resume"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return fd

    fd = await asyncio.to_thread(acquire)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # releases the flock
