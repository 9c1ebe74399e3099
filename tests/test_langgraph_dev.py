"""End to end: the real `langgraph dev` server serves the `foreman` graph to the LangGraph SDK.

One server is started per module from `langgraph.json` (see `tests.support.langgraph_dev`),
persisting to a scratch SQLite file through `FOREMAN_DB` and `foreman/server.py`. Runs use
the offline models, or `local:NAME` models: a loopback OpenAI-compatible server started
first, whose `EngineResponder` answers with the offline engines and records every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import NotFoundError

from foreman.checkpointers import open_checkpointer, open_persistence, open_store
from foreman.threads import collect_garbage
from graph.outputs import OUTPUTS, USES, registered_threads
from tests.conftest import HEAT_PUMPS
from tests.support import langgraph_dev
from tests.support.engine_models import Call, EngineResponder, Hold
from tests.support.langgraph_dev import REPO, DevServer
from tests.support.openai_server import OpenAICompatServer

pytestmark = pytest.mark.server

RUN_TIMEOUT_S = 60.0
PG_URL = os.environ.get("FOREMAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# Every model role offline and the bundled corpus, whatever FOREMAN_* says.
OFFLINE: dict[str, Any] = {
    "planner_model": "offline",
    "worker_model": "offline",
    "worker_models": {},
    "validator_model": "offline",
    "synthesizer_model": "offline",
    "judge": False,
    "corpus_dir": str(REPO / "data" / "corpus"),
}
CITATION = re.compile(r"\[how-heat-pumps-work#p\d+\]")
# The offline planner's plan for HEAT_PUMPS: r1 -> w1, r2 -> w2, (w1, w2) -> summary.
OBJECTIVES = {
    "r1": "Find evidence on how they work",
    "r2": "Find evidence on running costs",
    "w1": "Write the report section on how they work",
    "w2": "Write the report section on running costs",
    "summary": "Write an executive summary",
}


def subtask_of(call: Call) -> str | None:
    """The plan subtask a model request belongs to, by its objective."""
    found = [sid for sid, text in OBJECTIVES.items() if call.objective.startswith(text)]
    return found[0] if found else None


@pytest.fixture(scope="module")
def models() -> Iterator[tuple[OpenAICompatServer, EngineResponder]]:
    """The loopback OpenAI-compatible server `local:NAME` specs point the dev server at."""
    responder = EngineResponder()
    with OpenAICompatServer(responder) as server:
        yield server, responder
        responder.reset()


@pytest.fixture
def responder(models: tuple[OpenAICompatServer, EngineResponder]) -> Iterator[EngineResponder]:
    """The loopback models' responder, with no scripted behaviour left from another test."""
    models[1].reset()
    yield models[1]
    models[1].reset()


def serve(workdir: Path, env: dict[str, str]) -> Iterator[DevServer]:
    """Run `langgraph dev` for a fixture; the SDK's httpx client must not use a proxy."""
    try:
        with (
            langgraph_dev.dev_server(workdir, env) as server,
            pytest.MonkeyPatch.context() as mp,
        ):
            for var in langgraph_dev.PROXY_VARS:
                mp.delenv(var, raising=False)
                mp.delenv(var.lower(), raising=False)
            mp.setenv("NO_PROXY", "127.0.0.1,localhost")
            mp.setenv("no_proxy", "127.0.0.1,localhost")
            yield server
    except langgraph_dev.DevServerError as exc:
        pytest.fail(f"`langgraph dev` did not start: {exc}")


@pytest.fixture(scope="module")
def db_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SQLite file the module's server persists to (`FOREMAN_DB`)."""
    return tmp_path_factory.mktemp("foreman-db") / "server.sqlite"


@pytest.fixture(scope="module")
def dev_server(
    tmp_path_factory: pytest.TempPathFactory,
    models: tuple[OpenAICompatServer, EngineResponder],
    db_file: Path,
) -> Iterator[DevServer]:
    """`langgraph dev` persisting to `db_file`, its `local:` models on the loopback server."""
    env = {
        "FOREMAN_DB": f"sqlite:{db_file}",
        "LOCAL_BASE_URL": models[0].base_url,
        "LOCAL_API_KEY": "test",
        "FOREMAN_HTTP_RETRIES": "0",
        "FOREMAN_HTTP_TIMEOUT": str(RUN_TIMEOUT_S),
    }
    yield from serve(tmp_path_factory.mktemp("langgraph-dev"), env)


@pytest.fixture
async def client(dev_server: DevServer) -> AsyncIterator[LangGraphClient]:
    client = get_client(url=dev_server.url, api_key=None, timeout=RUN_TIMEOUT_S)
    yield client
    await client.aclose()


@pytest.fixture
async def new_thread(client: LangGraphClient) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Create threads for a test and delete them afterwards."""
    created: list[str] = []

    async def _new() -> str:
        thread = await client.threads.create(metadata={"test": "test_langgraph_dev"})
        created.append(thread["thread_id"])
        return str(thread["thread_id"])

    yield _new
    for thread_id in created:
        with contextlib.suppress(NotFoundError):  # the test may have deleted it
            await client.threads.delete(thread_id)


async def run_to_end(
    client: LangGraphClient,
    server: DevServer,
    thread_id: str,
    assistant_id: str = "foreman",
    **kwargs: Any,
) -> dict[str, Any]:
    """Start a background run on the thread and wait for it to finish."""
    run = await client.runs.create(thread_id, assistant_id, **kwargs)
    async with asyncio.timeout(RUN_TIMEOUT_S):
        result = await client.runs.join(thread_id, run["run_id"])
    finished = await client.runs.get(thread_id, run["run_id"])
    assert finished["status"] == "success" and "__error__" not in (result or {}), (
        f"run {finished['status']}: {(result or {}).get('__error__')}\n{server.log()}"
    )
    return result


def attempt_models(values: dict[str, Any]) -> dict[str, set[str]]:
    """The model specs each worker's attempts ran with, from a thread's state."""
    seen: dict[str, set[str]] = {}
    for rec in values["results"].values():
        for attempt in rec["attempts"]:
            seen.setdefault(attempt["worker"], set()).add(attempt["model"])
    return seen


async def test_plan_review_bad_answer_then_approve(
    client: LangGraphClient, dev_server: DevServer, new_thread: Callable[[], Awaitable[str]]
) -> None:
    thread_id = await new_thread()

    await run_to_end(
        client,
        dev_server,
        thread_id,
        input={"request": HEAT_PUMPS},
        context={**OFFLINE, "review_plan": True},
    )
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["review_plan"]
    assert len(state["interrupts"]) == 1
    first = state["interrupts"][0]
    review = first["value"]
    assert review["kind"] == "plan_review"
    assert review["error"] is None
    subtasks = review["plan"]["subtasks"]
    assert subtasks and all(s["id"] and s["worker"] for s in subtasks)

    # A resume value of the wrong shape does not fail the run: it asks again, with why.
    await run_to_end(client, dev_server, thread_id, command={"resume": {"action": "maybe"}})
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["review_plan"]
    assert len(state["interrupts"]) == 1
    again = state["interrupts"][0]
    assert again["id"] != first["id"]
    assert again["value"]["kind"] == "plan_review"
    assert again["value"]["plan"] == review["plan"]
    error = again["value"]["error"]
    assert isinstance(error, str) and error.strip()
    assert "not understood" in error and "approve" in error

    await run_to_end(client, dev_server, thread_id, command={"resume": {"action": "approve"}})
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "idle"
    state = await client.threads.get_state(thread_id)
    assert state["next"] == [] and not state["interrupts"]
    values = state["values"]
    assert values["status"] == "done", values.get("error")
    assert "Offline extractive mode" in values["answer"]
    assert CITATION.search(values["answer"]), values["answer"][:2000]
    actions = [e["detail"].get("action") for e in values["audit"] if e["kind"] == "plan_review"]
    assert actions == ["approve"]

    history = await client.threads.get_history(thread_id, limit=100)
    assert len(history) >= 5
    assert history[0]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    assert any("review_plan" in h["next"] for h in history)
    assert any("synthesize" in h["next"] for h in history)


async def test_stream_updates_and_custom_events_from_subgraphs(
    client: LangGraphClient, dev_server: DevServer, new_thread: Callable[[], Awaitable[str]]
) -> None:
    thread_id = await new_thread()
    parts: list[tuple[str, Any]] = []
    async with asyncio.timeout(RUN_TIMEOUT_S):
        async for part in client.runs.stream(
            thread_id,
            "foreman",
            input={"request": HEAT_PUMPS},
            context=OFFLINE,
            stream_mode=["updates", "custom"],
            stream_subgraphs=True,
        ):
            parts.append((part.event, part.data))

    errors = [data for event, data in parts if event == "error"]
    assert not errors, f"{errors}\n{dev_server.log()}"
    modes = {event.split("|")[0] for event, _ in parts}
    assert {"metadata", "updates", "custom"} <= modes
    # stream_subgraphs: events from inside the dispatch node carry a namespace.
    assert any(event.startswith("custom|dispatch:") for event, _ in parts)
    assert any(event.startswith("updates|dispatch:") for event, _ in parts)

    custom = [data for event, data in parts if event.split("|")[0] == "custom"]
    assert custom and all(isinstance(d, dict) and "foreman" in d for d in custom)
    kinds = {d["foreman"] for d in custom}
    assert {"phase", "plan", "subtask", "attempt", "verdict"} <= kinds
    plans = [d for d in custom if d["foreman"] == "plan"]
    assert plans and plans[0]["subtasks"]
    planned = {s["id"] for s in plans[0]["subtasks"]}
    statuses: dict[str, set[str]] = {}
    for d in custom:
        if d["foreman"] == "subtask":
            statuses.setdefault(d["id"], set()).add(d["status"])
    assert set(statuses) == planned
    assert all({"running", "accepted"} <= s for s in statuses.values()), statuses

    root_updates = [data for event, data in parts if event == "updates"]
    assert any("synthesize" in u for u in root_updates)

    state = await client.threads.get_state(thread_id)
    assert state["next"] == []
    assert state["values"]["status"] == "done", state["values"].get("error")
    assert CITATION.search(state["values"]["answer"])


async def test_studio_reads_the_context_form_and_the_graph(client: LangGraphClient) -> None:
    [assistant] = await client.assistants.search(graph_id="foreman", limit=1)
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    fields = schemas["context_schema"]["properties"]
    assert {"planner_model", "worker_models", "max_parallel", "review_plan"} <= set(fields)
    assert all(f.get("description") for f in fields.values()), fields
    drawn = await client.assistants.get_graph(assistant["assistant_id"])
    nodes = {n["id"] for n in drawn["nodes"]}
    assert {"plan", "review_plan", "dispatch", "validate", "clarify", "synthesize"} <= nodes


async def test_studio_reads_the_input_and_output_forms(client: LangGraphClient) -> None:
    [assistant] = await client.assistants.search(graph_id="foreman", limit=1)
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    assert schemas["input_schema"] is not None
    assert schemas["output_schema"] is not None
    assert set(schemas["input_schema"]["properties"]) == {"request"}
    assert {"answer", "status", "error"} <= set(schemas["output_schema"]["properties"])


async def test_assistants_run_with_their_own_context(
    client: LangGraphClient,
    dev_server: DevServer,
    new_thread: Callable[[], Awaitable[str]],
    responder: EngineResponder,
) -> None:
    alpha_ctx = {
        **OFFLINE,
        "worker_model": "local:alpha-worker",
        "synthesizer_model": "local:alpha-synth",
        "max_parallel": 1,
    }
    beta_ctx = {
        **OFFLINE,
        "worker_model": "local:beta-worker",
        "worker_models": {"writer": "local:beta-writer"},
        "validator_model": "local:beta-judge",
        "judge": True,
    }
    responder.latency_s = 0.2  # long enough for parallel requests to overlap
    alpha = await client.assistants.create(graph_id="foreman", context=alpha_ctx, name="alpha")
    beta = await client.assistants.create(graph_id="foreman", context=beta_ctx, name="beta")
    try:
        assert (await client.assistants.get(alpha["assistant_id"]))["context"] == alpha_ctx
        runs: dict[str, tuple[dict[str, Any], set[str], int]] = {}
        for name, assistant in (("alpha", alpha), ("beta", beta)):
            thread_id = await new_thread()
            before = len(responder.calls)
            responder.reset_peak()
            # No context on the run: the assistant's applies.
            await run_to_end(
                client,
                dev_server,
                thread_id,
                assistant["assistant_id"],
                input={"request": HEAT_PUMPS},
            )
            state = await client.threads.get_state(thread_id)
            asked = {c.model for c in responder.calls[before:]}
            runs[name] = (state["values"], asked, responder.peak)
    finally:
        await client.assistants.delete(alpha["assistant_id"])
        await client.assistants.delete(beta["assistant_id"])

    values, asked, peak = runs["alpha"]
    assert values["status"] == "done", values.get("error")
    assert attempt_models(values) == {
        "research": {"local:alpha-worker"},
        "writer": {"local:alpha-worker"},
    }
    assert set(values["usage"]) == {"offline", "local:alpha-worker", "local:alpha-synth"}
    assert asked == {"alpha-worker", "alpha-synth"}  # what the loopback server was asked for
    # max_parallel=1: the model server never had two requests at once. (Attempt spans
    # can't show this: started_at is wall-clock, duration_s a rounded perf_counter delta,
    # and a retry starts microseconds after the attempt before it ends.)
    assert sum(len(rec["attempts"]) for rec in values["results"].values()) >= 5
    assert peak == 1

    values, asked, peak = runs["beta"]
    assert values["status"] == "done", values.get("error")
    assert attempt_models(values) == {
        "research": {"local:beta-worker"},
        "writer": {"local:beta-writer"},
    }
    # judge=True: the validator's model was called; the synthesizer stayed offline.
    assert set(values["usage"]) == {
        "offline",
        "local:beta-worker",
        "local:beta-writer",
        "local:beta-judge",
    }
    assert asked == {"beta-worker", "beta-writer", "beta-judge"}
    assert peak >= 2  # the independent research subtasks overlapped: the count can see it


async def test_two_parallel_questions_answered_in_one_resume(
    client: LangGraphClient,
    dev_server: DevServer,
    new_thread: Callable[[], Awaitable[str]],
    responder: EngineResponder,
) -> None:
    responder.askers.add("asker")
    context = {**OFFLINE, "worker_model": "local:asker"}
    thread_id = await new_thread()

    await run_to_end(client, dev_server, thread_id, input={"request": HEAT_PUMPS}, context=context)
    assert (await client.threads.get(thread_id))["status"] == "interrupted"
    asked = await client.threads.get_state(thread_id)
    questions = asked["interrupts"]
    assert sorted(q["value"]["subtask"] for q in questions) == ["r1", "r2"]
    assert all(q["value"]["kind"] == "clarification" for q in questions)
    assert asked["next"] == ["clarify", "clarify"]

    answers = {q["id"]: {"answer": f"focus on {q['value']['subtask']} basics"} for q in questions}
    await run_to_end(client, dev_server, thread_id, command={"resume": answers}, context=context)

    state = await client.threads.get_state(thread_id)
    values = state["values"]
    assert state["next"] == [] and not state["interrupts"]
    assert values["status"] == "done", values.get("error")
    assert values["clarifications"] == {"r1": "focus on r1 basics", "r2": "focus on r2 basics"}
    clarified = [e["subtask"] for e in values["audit"] if e["kind"] == "clarification"]
    assert sorted(clarified) == ["r1", "r2"]
    # Each research subtask was asked again, with its own answer in the prompt.
    reruns = {
        (subtask_of(c), c.clarification)
        for c in responder.calls
        if c.model == "asker" and c.schema == "ResearchFindings" and c.clarification
    }
    assert reruns == {("r1", "focus on r1 basics"), ("r2", "focus on r2 basics")}

    history = await client.threads.get_history(thread_id, limit=100)
    paused = [h for h in history if h["interrupts"]]
    assert (
        paused and paused[0]["checkpoint"]["checkpoint_id"] == asked["checkpoint"]["checkpoint_id"]
    )
    assert {i["id"] for i in paused[0]["interrupts"]} == set(answers)


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

    # Deleting the thread through the server drops its checkpoints only; `foreman gc`
    # (collect_garbage) then drops its registration and the outputs nobody else uses.
    await client.threads.delete(thread_id)
    async with open_persistence(f"sqlite:{db_file}") as (saver, store):
        assert await saver.aget_tuple(config) is None
        assert thread_id in await registered_threads(store)
        collected = await collect_garbage(saver, store, grace_s=0)
        assert thread_id in collected and thread_id not in await registered_threads(store)
        users = [await store.asearch((*USES, k), limit=1) for k in refs]
        kept = [await store.aget(OUTPUTS, k) is not None for k in refs]
    assert kept == [bool(u) for u in users]  # an output stays exactly while a thread uses it


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
    before = Counter(subtask_of(c) for c in responder.calls if c.model == "steady")
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
    after = Counter(subtask_of(c) for c in responder.calls if c.model == "steady")
    for sid in ("r1", "r2", "w1"):
        assert after[sid] == before[sid], (sid, before, after)  # no new model request
        assert all(a["started_at"] < cancelled_at for a in values["results"][sid]["attempts"])
    assert after["w2"] > before["w2"] and after["summary"] > 0
    w2 = values["results"]["w2"]
    assert w2["status"] == "accepted"
    assert all(a["started_at"] > cancelled_at for a in w2["attempts"])


@pytest.fixture(scope="module")
def pg_dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """`langgraph dev` persisting to the local PostgreSQL."""
    yield from serve(tmp_path_factory.mktemp("langgraph-dev-pg"), {"FOREMAN_DB": PG_URL})


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
