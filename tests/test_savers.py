"""Foreman's savers on SQLite and PostgreSQL: what the LangGraph server asks of them.

The server copies, deletes and rolls back threads through the checkpointer alone
(`acopy_thread`, `adelete_thread`, `adelete_for_runs`); `foreman.savers` makes the stored
outputs follow and removes a rolled-back run's checkpoints.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row

from foreman.savers import PostgresSaver
from foreman.threads import full_values
from graph import Context
from graph.outputs import OUTPUTS, referenced_keys, registered_threads
from tests.conftest import HEAT_PUMPS
from tests.support.persistence import pg_url, start

REFRIGERANTS = "Compare heat pump refrigerants and their environmental impact"


async def checkpoint_ids(app: Any, thread: str) -> list[str]:
    config = {"configurable": {"thread_id": thread}}
    return [s.config["configurable"]["checkpoint_id"] async for s in app.aget_state_history(config)]


async def test_a_copy_shares_outputs_and_deleting_through_the_saver_drops_them(
    persistence,
) -> None:
    app, store = persistence
    saver = app.checkpointer
    original = await start(app)
    config = {"configurable": {"thread_id": original}}
    values = (await app.aget_state(config)).values
    keys = referenced_keys(values["results"].values())
    history = await checkpoint_ids(app, original)
    copy = f"copy-{uuid.uuid4().hex[:8]}"

    await saver.acopy_thread(original, copy)
    copied = {"configurable": {"thread_id": copy}}
    assert (await app.aget_state(copied)).values == values
    assert await checkpoint_ids(app, copy) == history
    assert copy in await registered_threads(store)

    await saver.adelete_thread(original)
    assert original not in await registered_threads(store)
    assert all([await store.aget(OUTPUTS, k) is not None for k in keys])  # the copy uses them
    assert (await full_values(app, store, copy))["results"]["w1"]["text"]

    await saver.adelete_thread(copy)
    assert copy not in await registered_threads(store)
    assert all([await store.aget(OUTPUTS, k) is None for k in keys])


async def run_on(app: Any, thread: str, run_id: str, request: str) -> dict[str, Any]:
    config = {"configurable": {"thread_id": thread}, "metadata": {"run_id": run_id}}
    return await app.ainvoke({"request": request}, config, context=Context())


async def leftovers(saver: Any, thread: str) -> dict[str, int]:
    """Writes of checkpoints that are gone, and (PostgreSQL) channel values none refers to."""
    if isinstance(saver, PostgresSaver):
        with psycopg.connect(pg_url(), row_factory=dict_row) as conn:
            writes = conn.execute(
                "SELECT COUNT(*) AS n FROM checkpoint_writes w WHERE thread_id = %s AND NOT "
                "EXISTS (SELECT 1 FROM checkpoints c WHERE c.thread_id = w.thread_id "
                "AND c.checkpoint_ns = w.checkpoint_ns AND c.checkpoint_id = w.checkpoint_id)",
                (thread,),
            ).fetchone()
            blobs = conn.execute(
                "SELECT COUNT(*) AS n FROM checkpoint_blobs b WHERE thread_id = %s AND NOT "
                "EXISTS (SELECT 1 FROM checkpoints c WHERE c.thread_id = b.thread_id AND "
                "c.checkpoint_ns = b.checkpoint_ns "
                "AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version)",
                (thread,),
            ).fetchone()
        return {"writes": writes["n"], "blobs": blobs["n"]}  # type: ignore[index]
    async with saver.conn.execute(
        "SELECT COUNT(*) FROM writes w WHERE thread_id = ? AND NOT EXISTS (SELECT 1 FROM "
        "checkpoints c WHERE c.thread_id = w.thread_id AND c.checkpoint_ns = w.checkpoint_ns "
        "AND c.checkpoint_id = w.checkpoint_id)",
        (thread,),
    ) as cur:
        row = await cur.fetchone()
    return {"writes": row[0], "blobs": 0}


async def test_a_rolled_back_run_leaves_the_thread_as_the_run_before_left_it(
    persistence,
) -> None:
    """`multitask_strategy="rollback"`: the server cancels a run and calls
    `adelete_for_runs` with its id; the thread must read as if that run never started."""
    app, _store = persistence
    saver = app.checkpointer
    thread = f"rollback-{uuid.uuid4().hex[:8]}"
    first = f"run-{uuid.uuid4().hex[:8]}"
    rolled_back = f"run-{uuid.uuid4().hex[:8]}"
    assert (await run_on(app, thread, first, HEAT_PUMPS))["status"] == "done"
    config = {"configurable": {"thread_id": thread}}
    before = (await app.aget_state(config)).values
    kept = await checkpoint_ids(app, thread)

    await run_on(app, thread, rolled_back, REFRIGERANTS)
    assert len(await checkpoint_ids(app, thread)) > len(kept)
    await saver.adelete_for_runs([rolled_back])

    assert await checkpoint_ids(app, thread) == kept
    assert (await app.aget_state(config)).values == before
    assert await leftovers(saver, thread) == {"writes": 0, "blobs": 0}
    # The thread goes on from there.
    again = await run_on(app, thread, f"run-{uuid.uuid4().hex[:8]}", REFRIGERANTS)
    assert again["status"] == "done"
    await saver.adelete_thread(thread)
