"""End to end: the real `langgraph dev` server keeps, forks, copies, cancels, deletes threads.

Thread state and history read back through the SDK and straight from the server's SQLite
database, stored outputs following a thread copy and deletion through the API, a
time-travel fork, a run cancelled midway and resumed, and the PostgreSQL checkpointer. The
server and its loopback models are fixtures of `tests.support.server_fixtures`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from foreman.checkpointers import open_checkpointer, open_persistence, open_store
from foreman.housekeeping import collect_garbage
from foreman.orchestration.outputs import OUTPUTS, USES, registered_threads
from tests.conftest import HEAT_PUMPS
from tests.support.engine_models import EngineResponder, Hold
from tests.support.langgraph_dev import DevServer
from tests.support.server_fixtures import (
    CITATION,
    OBJECTIVES,
    OFFLINE,
    PG_URL,
    RUN_TIMEOUT_S,
    run_to_end,
    subtask_of,
)

pytestmark = pytest.mark.server


async def test_thread_state_history_and_the_sqlite_checkpointer(
    client: LangGraphClient,
    dev_server: DevServer,
    new_thread: Callable[[], Awaitable[str]],
    db_file: Path,
) -> None:
    thread_id = await new_thread()
    await run_to_end(client, dev_server, thread_id, input={"request": HEAT_PUMPS}, context=OFFLINE)

    state = await client.threads.get_state(thread_id)
    assert state["values"]["status"] == "done"
    history = await client.threads.get_history(thread_id, limit=100)
    ids = [h["checkpoint"]["checkpoint_id"] for h in history]
    assert len(set(ids)) == len(ids) >= 5
    assert ids[0] == state["checkpoint"]["checkpoint_id"]
    # Newest first, each checkpoint's parent the next one down, down to the input.
    parents = [(h["parent_checkpoint"] or {}).get("checkpoint_id") for h in history]
    assert parents == [*ids[1:], None]
    steps = [h["metadata"]["step"] for h in history]
    assert steps == sorted(steps, reverse=True) and steps[-1] == -1
    assert history[-1]["next"] == ["__start__"]
    # A past checkpoint reads back as it was: before synthesis there was no answer.
    before = next(h for h in history if h["next"] == ["synthesize"])
    past = await client.threads.get_state(
        thread_id, checkpoint_id=before["checkpoint"]["checkpoint_id"]
    )
    assert past["values"] == before["values"] and "answer" not in past["values"]
    assert set(past["values"]["results"]) == set(OBJECTIVES)

    # The server wrote the thread to FOREMAN_DB: the same checkpoints, read without it.
    config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    async with open_checkpointer(f"sqlite:{db_file}") as saver:
        latest = await saver.aget_tuple(config)
        stored = [c.config["configurable"]["checkpoint_id"] async for c in saver.alist(config)]
    assert latest is not None
    assert latest.config["configurable"]["checkpoint_id"] == ids[0]
    assert latest.checkpoint["channel_values"]["answer"] == state["values"]["answer"]
    assert stored == ids
    # ... and the worker outputs the records refer to are in its store.
    refs = {
        k for rec in state["values"]["results"].values() for k in (rec.get("refs") or {}).values()
    }
    assert refs
    async with open_store(f"sqlite:{db_file}") as store:
        missing = [k for k in refs if await store.aget(OUTPUTS, k) is None]
    assert not missing

    # A copy through the API registers its use of the stored outputs (`foreman.savers`), so
    # deleting the original keeps them; deleting the copy too leaves each output exactly
    # while another thread uses it, with nothing left over for `foreman gc`.
    copied = await client.threads.copy(thread_id)
    copy_id = copied["thread_id"]  # type: ignore[index]  # the SDK says None; it is the thread
    try:
        assert (await client.threads.get_state(copy_id))["values"] == state["values"]
        await client.threads.delete(thread_id)
        async with open_persistence(f"sqlite:{db_file}") as (saver, store):
            assert await saver.aget_tuple(config) is None
            registered = await registered_threads(store)
            assert copy_id in registered and thread_id not in registered
            assert not [k for k in refs if await store.aget(OUTPUTS, k) is None]
    finally:
        await client.threads.delete(copy_id)
    async with open_persistence(f"sqlite:{db_file}") as (saver, store):
        assert copy_id not in await registered_threads(store)
        users = [await store.asearch((*USES, k), limit=1) for k in refs]
        kept = [await store.aget(OUTPUTS, k) is not None for k in refs]
        assert copy_id not in await collect_garbage(saver, store, grace_s=0)
    assert kept == [bool(u) for u in users]


async def test_time_travel_fork_reruns_one_subtask_and_resynthesizes(
    client: LangGraphClient,
    dev_server: DevServer,
    new_thread: Callable[[], Awaitable[str]],
) -> None:
    """What `foreman rerun` does, through the API: fork before synthesis, rerun r2 only."""
    thread_id = await new_thread()
    await run_to_end(client, dev_server, thread_id, input={"request": HEAT_PUMPS}, context=OFFLINE)
    first = (await client.threads.get_state(thread_id))["values"]
    history = await client.threads.get_history(thread_id, limit=100)
    before = next(h for h in history if h["next"] == ["synthesize"])
    plan = {s["id"]: s for s in before["values"]["plan"]["subtasks"]}
    again = ["r2", *[sid for sid, s in plan.items() if "r2" in s["inputs"]]]
    marked = {sid: {**before["values"]["results"][sid], "status": "rerun"} for sid in again}
    fork = await client.threads.update_state(
        thread_id,
        {"results": marked, "next_step": "dispatch"},
        as_node="validate",
        checkpoint_id=before["checkpoint"]["checkpoint_id"],
    )
    assert fork["checkpoint"]["checkpoint_id"] not in {
        h["checkpoint"]["checkpoint_id"] for h in history
    }
    await run_to_end(client, dev_server, thread_id, input=None, context=OFFLINE)

    after = (await client.threads.get_state(thread_id))["values"]
    assert after["status"] == "done"
    rounds = [e for e in after["audit"] if e["kind"] == "dispatch_round"]
    assert rounds[-1]["detail"]["todo"] == again  # only r2 and what read it ran again
    for sid in plan.keys() - set(again):
        assert after["results"][sid] == first["results"][sid], sid
    for sid in again:
        assert (
            after["results"][sid]["attempts"][0]["started_at"]
            > (first["results"][sid]["attempts"][-1]["started_at"])
        )
    synth = [h for h in await client.threads.get_history(thread_id, limit=200) if not h["next"]]
    assert len(synth) == 2  # the original end and the fork's end are both in the history


async def test_rollback_leaves_nothing_of_the_cancelled_run(
    client: LangGraphClient,
    dev_server: DevServer,
    new_thread: Callable[[], Awaitable[str]],
    responder: EngineResponder,
) -> None:
    """`multitask_strategy="rollback"`: the server cancels the running run and has the
    checkpointer delete what it saved (`adelete_for_runs`); the new run starts clean."""
    hold = responder.hold = Hold(model="rolled-back", objective=OBJECTIVES["r1"])
    thread_id = await new_thread()
    first = await client.runs.create(
        thread_id,
        "foreman",
        input={"request": HEAT_PUMPS},
        context={**OFFLINE, "worker_model": "local:rolled-back"},
    )
    assert await asyncio.to_thread(hold.arrived.wait, RUN_TIMEOUT_S)
    saved = await client.threads.get_history(thread_id, limit=100)
    assert saved and {h["metadata"]["run_id"] for h in saved} == {first["run_id"]}

    second = await client.runs.create(
        thread_id,
        "foreman",
        input={"request": HEAT_PUMPS},
        context=OFFLINE,
        multitask_strategy="rollback",
    )
    hold.released.set()  # the held request returns into a cancelled run
    async with asyncio.timeout(RUN_TIMEOUT_S):
        await client.runs.join(thread_id, second["run_id"])
    history = await client.threads.get_history(thread_id, limit=100)
    assert {h["metadata"]["run_id"] for h in history} == {second["run_id"]}, dev_server.log()
    assert history[-1]["parent_checkpoint"] is None  # it started from an empty thread
    assert not {h["checkpoint"]["checkpoint_id"] for h in saved} & {
        h["checkpoint"]["checkpoint_id"] for h in history
    }
    assert (await client.threads.get_state(thread_id))["values"]["status"] == "done"


async def test_cancel_midway_then_resume_keeps_accepted_subtasks(
    client: LangGraphClient,
    dev_server: DevServer,
    new_thread: Callable[[], Awaitable[str]],
    responder: EngineResponder,
) -> None:
    # w2's model request is held at the loopback server: the run cannot finish before the
    # cancel, and r1, r2 and w1 are accepted while it waits.
    hold = responder.hold = Hold(model="steady", objective=OBJECTIVES["w2"])
    context = {**OFFLINE, "worker_model": "local:steady"}
    ours = len(responder.calls)  # the requests of this test start here
    thread_id = await new_thread()
    accepted: set[str] = set()
    run_id = ""
    async with asyncio.timeout(RUN_TIMEOUT_S):
        async for part in client.runs.stream(
            thread_id,
            "foreman",
            input={"request": HEAT_PUMPS},
            context=context,
            stream_mode=["custom"],
            stream_subgraphs=True,
            on_disconnect="continue",
        ):
            if part.event == "metadata":
                run_id = part.data["run_id"]
            elif part.event.split("|")[0] == "custom" and part.data.get("foreman") == "subtask":
                if part.data["status"] == "accepted":
                    accepted.add(part.data["id"])
            elif part.event == "error":
                pytest.fail(f"{part.data}\n{dev_server.log()}")
            if accepted >= {"r1", "r2", "w1"}:
                break
        assert await asyncio.to_thread(hold.arrived.wait, RUN_TIMEOUT_S)
    assert run_id and accepted == {"r1", "r2", "w1"}

    await client.runs.cancel(thread_id, run_id, wait=True)
    cancelled_at = time.time()
    assert (await client.runs.get(thread_id, run_id))["status"] == "interrupted"
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["dispatch"] and "answer" not in state["values"]
    before = Counter(subtask_of(c) for c in responder.calls[ours:] if c.model == "steady")
    assert before["w2"] == 1 and before["summary"] == 0

    hold.released.set()
    running: set[str] = set()
    async with asyncio.timeout(RUN_TIMEOUT_S):
        async for part in client.runs.stream(
            thread_id,
            "foreman",
            input=None,  # continue from the last checkpoint
            context=context,
            stream_mode=["custom"],
            stream_subgraphs=True,
        ):
            if part.event == "error":
                pytest.fail(f"{part.data}\n{dev_server.log()}")
            if part.event.split("|")[0] == "custom" and part.data.get("foreman") == "subtask":
                if part.data["status"] == "running":
                    running.add(part.data["id"])

    state = await client.threads.get_state(thread_id)
    values = state["values"]
    assert values["status"] == "done", values.get("error")
    assert CITATION.search(values["answer"])
    assert running == {"w2", "summary"}  # the resumed run started only these
    after = Counter(subtask_of(c) for c in responder.calls[ours:] if c.model == "steady")
    for sid in ("r1", "r2", "w1"):
        assert after[sid] == before[sid], (sid, before, after)  # no new model request
        assert all(a["started_at"] < cancelled_at for a in values["results"][sid]["attempts"])
    assert after["w2"] > before["w2"] and after["summary"] > 0
    w2 = values["results"]["w2"]
    assert w2["status"] == "accepted"
    assert all(a["started_at"] > cancelled_at for a in w2["attempts"])


@pytest.mark.postgres
async def test_postgres_checkpointer(pg_dev_server: DevServer) -> None:
    client = get_client(url=pg_dev_server.url, api_key=None, timeout=RUN_TIMEOUT_S)
    thread_id = (await client.threads.create())["thread_id"]
    try:
        await run_to_end(
            client, pg_dev_server, thread_id, input={"request": HEAT_PUMPS}, context=OFFLINE
        )
        state = await client.threads.get_state(thread_id)
        config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        async with open_checkpointer(PG_URL) as saver:
            latest = await saver.aget_tuple(config)
        assert latest is not None
        assert (
            latest.config["configurable"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
        )
        assert latest.checkpoint["channel_values"]["answer"] == state["values"]["answer"]
        refs = {
            k
            for rec in state["values"]["results"].values()
            for k in (rec.get("refs") or {}).values()
        }
        assert refs
        async with open_store(PG_URL) as store:
            missing = [k for k in refs if await store.aget(OUTPUTS, k) is None]
        assert not missing
    finally:
        await client.threads.delete(thread_id)
        await client.aclose()
