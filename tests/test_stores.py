"""The SQLite store Foreman opens beside its checkpointer survives cancelled runs.

LangGraph's `AsyncSqliteStore` opens each batch with `BEGIN`. aiosqlite runs a statement in
its own thread even when the coroutine awaiting it is cancelled, so a run cancelled while
its `BEGIN` was queued (a server cancel or rollback, Ctrl-C) left a transaction open, and
every later batch on that connection failed: "cannot start a transaction within a
transaction". `foreman.stores.SqliteStore` closes such a leftover before it begins.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from langgraph.store.base import PutOp

from foreman.checkpointers import open_store


async def test_a_batch_cancelled_while_its_begin_was_queued_leaves_the_store_usable(
    tmp_path: Any,
) -> None:
    async with open_store(f"sqlite:{tmp_path / 'store.sqlite'}") as store:
        await store.aput(("t",), "before", {"v": 0})
        conn: Any = store.conn  # type: ignore[attr-defined]
        real = conn.execute
        queued: list[asyncio.Future[Any]] = []
        begun = asyncio.Event()

        def execute(sql: str, *args: Any) -> Any:
            if sql.startswith("BEGIN") and not queued:
                # As aiosqlite does: the statement runs whatever happens to the caller,
                # who is still waiting when it is cancelled.
                queued.append(asyncio.ensure_future(real(sql, *args)))
                begun.set()
                return asyncio.Event().wait()
            return real(sql, *args)

        conn.execute = execute
        try:
            # `abatch`, as `graph/outputs.py` calls it (`aput` hands over to a batching task,
            # which a cancel does not reach).
            op = PutOp(("t",), "cancelled", {"v": 1})
            put = asyncio.create_task(store.abatch([op]))
            await begun.wait()
            put.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await put
            await queued[0]
            assert conn.in_transaction  # the leftover the cancelled batch could not close
        finally:
            conn.execute = real

        await store.aput(("t",), "after", {"v": 2})
        assert (await store.aget(("t",), "after")).value == {"v": 2}  # type: ignore[union-attr]
        assert await store.aget(("t",), "cancelled") is None
        assert (await store.aget(("t",), "before")).value == {"v": 0}  # type: ignore[union-attr]
