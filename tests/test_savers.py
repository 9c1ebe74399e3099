"""Foreman's savers on SQLite and PostgreSQL: what the LangGraph server asks of them.

The server copies, deletes, rolls back and prunes threads through the checkpointer alone
(`acopy_thread`, `adelete_thread`, `adelete_for_runs`, `aprune`); `foreman.savers` makes
the stored outputs follow, removes a rolled-back run's checkpoints, and prunes on SQLite.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from langgraph.types import Command
from psycopg.rows import dict_row

from foreman import Context
from foreman.housekeeping import full_values
from foreman.orchestration.outputs import OUTPUTS, referenced_keys, registered_threads
from foreman.postgres import PostgresSaver
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


async def test_prune_keep_latest_keeps_a_thread_that_reads_and_resumes(persistence) -> None:
    """The server's thread TTL with `strategy="keep_latest"` (`aprune`)."""
    app, store = persistence
    saver = app.checkpointer
    done = await start(app)
    config = {"configurable": {"thread_id": done}}
    before = await app.aget_state(config)
    paused = f"paused-{uuid.uuid4().hex[:8]}"
    waiting = {"configurable": {"thread_id": paused}}
    ctx = Context(review_plan=True)
    await app.ainvoke({"request": HEAT_PUMPS}, waiting, context=ctx)
    assert (await app.aget_state(waiting)).interrupts  # the plan waits for approval
    assert len(await checkpoint_ids(app, done)) > 1

    await saver.aprune([done, paused])

    assert await checkpoint_ids(app, done) == [before.config["configurable"]["checkpoint_id"]]
    assert (await app.aget_state(config)).values == before.values
    assert (await full_values(app, store, done))["results"]["w1"]["text"]  # outputs kept
    assert len(await checkpoint_ids(app, paused)) == 1
    resumed = await app.ainvoke(Command(resume={"action": "approve"}), waiting, context=ctx)
    assert resumed["status"] == "done"
    for thread in (done, paused):
        await saver.adelete_thread(thread)


async def test_prune_delete_removes_threads_and_their_outputs(persistence) -> None:
    app, store = persistence
    saver = app.checkpointer
    threads = [await start(app), await start(app, REFRIGERANTS)]
    keys = set()
    for thread in threads:
        values = (await app.aget_state({"configurable": {"thread_id": thread}})).values
        keys |= referenced_keys(values["results"].values())

    await saver.aprune(threads, strategy="delete")

    for thread in threads:
        assert await checkpoint_ids(app, thread) == []
        assert thread not in await registered_threads(store)
    assert all([await store.aget(OUTPUTS, k) is None for k in keys])
    with pytest.raises(ValueError, match="Unknown prune strategy"):
        await saver.aprune(threads, strategy="keep_oldest")
