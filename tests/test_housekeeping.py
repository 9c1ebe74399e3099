"""Thread housekeeping on SQLite and PostgreSQL: list, delete, expire by age, export, gc.

Both backends come from `tests.support.persistence` (PostgreSQL in a database of its own).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from typing import Any

from foreman import Context, build_graph
from foreman.checkpointers import open_checkpointer
from foreman.examples import EXAMPLES
from foreman.housekeeping import (
    collect_garbage,
    delete_thread,
    expire_threads,
    full_values,
    last_update,
    thread_status,
)
from foreman.listing import checkpoint_status, list_threads
from foreman.orchestration.outputs import (
    OUTPUTS,
    last_registration,
    referenced_keys,
    registered_threads,
)
from tests.conftest import HEAT_PUMPS
from tests.support.persistence import start


async def test_delete_drops_checkpoints_and_only_unshared_outputs(persistence) -> None:
    app, store = persistence
    saver = app.checkpointer
    a = await start(app)
    b = await start(app)  # same request, same offline outputs: every stored output is shared
    c = await start(app, "Compare heat pump refrigerants and their environmental impact")
    keys = {}
    for name, thread in (("a", a), ("b", b), ("c", c)):
        values = (await app.aget_state({"configurable": {"thread_id": thread}})).values
        keys[name] = referenced_keys(values["results"].values())
    assert keys["a"] and keys["a"] == keys["b"] and keys["c"] - keys["a"]

    assert await delete_thread(saver, store, a) == 0  # b still uses all of them
    assert await saver.aget_tuple({"configurable": {"thread_id": a}}) is None
    assert (await full_values(app, store, b))["results"]["w1"]["text"]  # b reads back whole
    only_c = keys["c"] - keys["b"]
    assert await delete_thread(saver, store, c) == len(only_c)
    for key in only_c:
        assert await store.aget(OUTPUTS, key) is None
    for key in keys["b"]:
        assert await store.aget(OUTPUTS, key) is not None
    listed = {row.thread_id for row in await list_threads(saver, limit=10_000)}
    assert b in listed and a not in listed and c not in listed
    await delete_thread(saver, store, b)


async def test_expire_deletes_threads_older_than_the_ttl(persistence) -> None:
    app, store = persistence
    saver = app.checkpointer
    old = await start(app)
    new = await start(app)
    t_old, t_new = await last_update(saver, old), await last_update(saver, new)
    assert t_old is not None and t_new is not None and t_old < t_new
    # A TTL that falls between the two runs' last checkpoints.
    expired = await expire_threads(saver, store, max_age_s=(t_new - t_old) / 2, now=t_new)
    assert old in expired and new not in expired
    assert await saver.aget_tuple({"configurable": {"thread_id": old}}) is None
    assert (await full_values(app, store, new))["status"] == "done"
    assert new in await expire_threads(saver, store, max_age_s=0, now=t_new + 1)


async def test_gc_drops_outputs_of_threads_deleted_elsewhere(persistence) -> None:
    app, store = persistence
    saver = app.checkpointer
    kept = await start(app)
    gone = await start(app, "Compare heat pump refrigerants and their environmental impact")
    keys = {}
    for thread in (kept, gone):
        values = (await app.aget_state({"configurable": {"thread_id": thread}})).values
        keys[thread] = referenced_keys(values["results"].values())
    only_gone = keys[gone] - keys[kept]
    assert only_gone and keys[kept]

    await delete_checkpoints_only(saver, gone)
    assert all([await store.aget(OUTPUTS, k) is not None for k in only_gone])  # left behind
    assert gone not in await collect_garbage(saver, store)  # stored just now: spared
    dry = await collect_garbage(saver, store, grace_s=0, dry_run=True)
    assert dry[gone] == 0 and kept not in dry
    assert all([await store.aget(OUTPUTS, k) is not None for k in only_gone])

    dropped = await collect_garbage(saver, store, grace_s=0)
    assert kept not in dropped and 0 < dropped[gone] <= len(only_gone)
    assert all([await store.aget(OUTPUTS, k) is None for k in only_gone])
    assert all([await store.aget(OUTPUTS, k) is not None for k in keys[kept]])
    assert gone not in await registered_threads(store)
    assert (await full_values(app, store, kept))["results"]["w1"]["text"]
    assert gone not in await collect_garbage(saver, store, grace_s=0)  # nothing left to do
    await delete_thread(saver, store, kept)


async def test_registration_time_is_right_in_any_time_zone(persistence, monkeypatch) -> None:
    app, store = persistence
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # 9 h east of the UTC the SQLite store keeps
    time.tzset()
    try:
        before = time.time()
        thread = await start(app)
        stored = await last_registration(store, thread)
        assert stored is not None and before - 2 <= stored <= time.time() + 2
    finally:
        monkeypatch.undo()
        time.tzset()
    await delete_thread(app.checkpointer, store, thread)


def test_cli_threads_delete_expire_and_export(cli, tmp_path, monkeypatch) -> None:
    for thread in ("one", "two"):
        assert cli("run", HEAT_PUMPS, "--thread", thread, "--quiet").exit_code == 0
    listing = cli("threads").output
    assert "one" in listing and "two" in listing and "done" in listing

    export = tmp_path / "one.json"
    assert cli("show", "one", "--format", "json", "--out", str(export)).exit_code == 0
    data = json.loads(export.read_text())
    attempt = data["results"]["r1"]["attempts"][0]
    assert attempt["input"]["objective"] and attempt["output"]["findings"]  # loaded whole
    assert {"model", "usage", "duration_s", "verdict"} <= set(attempt)
    assert data["checkpoints"] and data["checkpoints"][-1]["parent"] is None
    md = cli("show", "one", "--format", "md").output
    assert "- input: " in md and '"findings"' in md and "## Checkpoints" in md

    result = cli("delete", "one")
    assert result.exit_code == 0 and "deleted one" in result.output
    assert cli("show", "one").exit_code == 2
    bad = cli("delete", "nope")
    assert bad.exit_code == 2 and "no run with thread id 'nope'" in bad.output

    assert cli("expire").exit_code == 2  # no age given and no FOREMAN_THREAD_TTL
    assert cli("expire", "--older-than", "soon").exit_code == 2
    dry = cli("expire", "--older-than", "0s", "--dry-run")
    assert dry.exit_code == 0 and "would delete 1" in dry.output and "two" in dry.output
    assert "two" in cli("threads").output
    # With a TTL set, `run` expires older threads before it starts.
    monkeypatch.setenv("FOREMAN_THREAD_TTL", "0s")
    result = cli("run", HEAT_PUMPS, "--thread", "three", "--quiet")
    assert result.exit_code == 0 and "expired 1 thread(s)" in result.output
    listing = cli("threads").output
    assert "three" in listing and "two" not in listing

    # A run deleted by a saver that does not know the store leaves outputs for `gc`.
    asyncio.run(_delete_checkpoints_only(os.environ["FOREMAN_DB"], "three"))
    assert cli("gc", "--grace", "soon").exit_code == 2
    assert "three" not in cli("gc", "--dry-run").output  # within the default grace (1d)
    dry = cli("gc", "--grace", "0s", "--dry-run")
    assert dry.exit_code == 0 and "1 deleted run(s) left stored outputs: three" in dry.output
    result = cli("gc", "--grace", "0s")
    assert result.exit_code == 0 and "of 1 deleted run(s)" in result.output
    assert "dropped 0" not in result.output
    assert "of 0 deleted run(s)" in cli("gc", "--grace", "0s").output


async def _delete_checkpoints_only(db: str, thread: str) -> None:
    async with open_checkpointer(db) as saver:  # without the store: checkpoints only
        await saver.adelete_thread(thread)


async def delete_checkpoints_only(saver: Any, thread: str) -> None:
    """Delete a thread as a saver that does not know the store does (a stock LangGraph
    saver, Aegra's, or Foreman's before `foreman.savers`): its outputs stay registered."""
    store, saver.outputs_store = saver.outputs_store, None
    try:
        await saver.adelete_thread(thread)
    finally:
        saver.outputs_store = store


def test_server_persistence_follows_foreman_db_then_the_platform_database(monkeypatch) -> None:
    from foreman.server import server_db

    monkeypatch.delenv("FOREMAN_DB", raising=False)
    monkeypatch.delenv("DATABASE_URI", raising=False)
    assert server_db() == "sqlite:.foreman/foreman.sqlite"
    monkeypatch.setenv("DATABASE_URI", "postgres://u@db:5432/platform")
    assert server_db() == "postgres://u@db:5432/platform"  # replicas share it
    monkeypatch.setenv("FOREMAN_DB", "sqlite:/data/foreman.sqlite")
    assert server_db() == "sqlite:/data/foreman.sqlite"


async def test_the_listing_reads_each_status_off_the_checkpoint_as_the_graph_does(
    persistence,
) -> None:
    """`foreman threads` reads the saver alone; each status must be what the graph says."""
    app, store = persistence
    saver = app.checkpointer
    done = await start(app)
    review = f"ls-{uuid.uuid4().hex[:8]}"
    await app.ainvoke(
        {"request": HEAT_PUMPS},
        {"configurable": {"thread_id": review}},
        context=Context(review_plan=True),
    )
    asked = f"ls-{uuid.uuid4().hex[:8]}"  # no verified sender: the lookup worker asks
    await app.ainvoke(
        {"request": EXAMPLES["support"].request},
        {"configurable": {"thread_id": asked}},
        context=Context(),
    )
    stopped = f"ls-{uuid.uuid4().hex[:8]}"  # as if the process died before dispatching
    halting = build_graph().compile(checkpointer=saver, store=store, interrupt_before=["dispatch"])
    await halting.ainvoke(
        {"request": HEAT_PUMPS}, {"configurable": {"thread_id": stopped}}, context=Context()
    )
    seen = {}
    for thread in (done, review, asked, stopped):
        config = {"configurable": {"thread_id": thread}}
        from_graph = thread_status(await app.aget_state(config))
        found = await saver.aget_tuple(config)
        assert found is not None
        assert checkpoint_status(found) == from_graph, thread
        seen[thread] = from_graph
    assert seen[done] == "done"
    assert seen[review] == "paused, waiting: plan_review"
    assert seen[asked].startswith("paused, waiting: ")
    assert seen[stopped] == "stopped at dispatch (resumable)"
    listed = {row.thread_id: row for row in await list_threads(saver, limit=10_000)}
    assert {t: listed[t].status for t in seen} == seen
    assert listed[done].request == HEAT_PUMPS
