"""Studio sees the workers: the drawing, the subgraph list, and each attempt's saved state.

Every attempt of a graph worker runs through the workers graph (`foreman.workers.router`),
a subgraph of the `dispatch` node (dataflow) and of the `worker` node (waves). LangGraph
saves the worker's state under the attempt's checkpoint namespace and reads it back there
with the worker's own channels, as Studio does.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import StateSnapshot

from foreman import build_graph
from foreman.checkpointers import open_persistence
from foreman.orchestration.outputs import load_all
from foreman.workers import registry as reg
from foreman.workers.registry import WorkerRegistry
from foreman.workers.router import build_workers_graph
from tests.conftest import HEAT_PUMPS, scripted_context
from tests.support import custom_worker

SCOPES = {"dataflow": "dispatch|run_subtask", "waves": "worker"}


@pytest.fixture
def with_custom_workers(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The default registry plus a custom graph worker and a custom tool worker."""
    monkeypatch.setenv(
        "FOREMAN_WORKERS",
        "tests.support.custom_worker:make,tests.support.custom_worker:make_polisher",
    )
    reg.default_registry.cache_clear()
    yield reg.default_registry()
    reg.default_registry.cache_clear()
    custom_worker.HOLD_S.clear()


@pytest.fixture(params=["memory", "sqlite"])
async def saver(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Any]:
    """An in-memory checkpointer (no store), or SQLite with its store as the CLI opens them."""
    if request.param == "memory":
        yield InMemorySaver(), None
        return
    async with open_persistence(f"sqlite:{tmp_path / 'runs.sqlite'}") as pair:
        yield pair


def recast(namespace: str) -> str:
    """A checkpoint namespace without its task ids: the path through the graph's nodes."""
    parts = [p.split(":")[0] for p in namespace.split("|") if not p.isdigit()]
    return "|".join(parts)


async def attempt_states(
    app: Any, saver: BaseCheckpointSaver, thread: dict[str, Any]
) -> dict[str, StateSnapshot]:
    """The saved state of every worker attempt of a thread, by namespace, read by the graph."""
    listed = {t.config["configurable"]["checkpoint_ns"] async for t in saver.alist(thread)}
    tid = thread["configurable"]["thread_id"]
    return {
        ns: await app.aget_state({"configurable": {"thread_id": tid, "checkpoint_ns": ns}})
        for ns in sorted(listed - {""})
    }


def test_get_subgraphs_lists_every_graph_worker_and_the_drawing_shows_their_steps(
    with_custom_workers: WorkerRegistry,
) -> None:
    app = build_graph().compile()
    graph_workers = [n for n, s in with_custom_workers.items() if s.graph is not None]
    tools = [n for n, s in with_custom_workers.items() if s.tool is not None]
    assert "polisher" in graph_workers and {"shouter", "lookup"} <= set(tools)
    listed = [name for name, _ in app.get_subgraphs(recurse=True)]
    for scope in SCOPES.values():
        assert [n for n in listed if n.startswith(f"{scope}|")] == [
            f"{scope}|{w}" for w in graph_workers
        ]
    # each worker's own steps are drawn inside both nodes that run it
    drawn = set(app.get_graph(xray=True).nodes)
    for name in graph_workers:
        graph = with_custom_workers[name].graph
        assert graph is not None
        steps = set(graph.get_graph().nodes) - {"__start__", "__end__"}
        for scope in ("dispatch:run_subtask", "worker"):
            assert {f"{scope}:{name}:{s}" for s in steps} <= drawn, (name, scope)
    assert "dispatch:run_subtask:research:search_corpus" in drawn
    assert "worker:polisher:polish" in drawn
    assert not any(t in n.split(":") for n in drawn for t in tools)  # tools are called directly
    # without xray the drawing is the orchestrator's alone
    assert all(":" not in n for n in app.get_graph().nodes)


def test_a_registry_of_tools_alone_has_no_workers_graph() -> None:
    registry = WorkerRegistry([custom_worker.make()])
    assert build_workers_graph(registry) is None
    assert list(build_graph(registry).compile().get_subgraphs()) == []


@pytest.mark.parametrize("scheduler", ["dataflow", "waves"])
async def test_each_attempt_reads_back_by_namespace_with_the_workers_channels(
    saver: Any, scheduler: str, thread: dict[str, Any]
) -> None:
    checkpointer, store = saver
    app = build_graph().compile(checkpointer=checkpointer, store=store)
    offline = dict(planner_model="offline", worker_model="offline", synthesizer_model="offline")
    ctx = scripted_context(scheduler=scheduler, worker_durability="async", **offline)
    out = await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx, durability="sync")
    assert out["status"] == "done", out.get("error")
    values = (await app.aget_state(thread)).values
    records = await load_all(values["results"], store)
    states = await attempt_states(app, checkpointer, thread)

    # one namespace per attempt, under the node that ran it, named after the worker
    scope = SCOPES[scheduler]
    by_subtask: dict[str, tuple[str, StateSnapshot]] = {}
    for ns, snap in states.items():
        sid = snap.values["input"]["subtask"]["id"]
        worker = records[sid]["worker"]
        assert recast(ns) == f"{scope}|{worker}", ns
        assert re.fullmatch(rf"[\w|:-]+\|{worker}:[0-9a-f-]{{36}}", ns), ns
        by_subtask[sid] = (ns, snap)
    assert set(by_subtask) == set(records) == {"r1", "r2", "w1", "w2", "summary"}

    for sid, (_, snap) in by_subtask.items():
        [attempt] = records[sid]["attempts"]
        assert snap.next == () and snap.values["output"] == attempt["output"]
        assert snap.values["input"]["attempt"] == 1
        assert snap.values["model"] == "offline" and snap.values["usage"]["calls"] == 1
        deps = snap.values["input"]["dependencies"]
        assert sorted(deps) == attempt["input"]["dependencies"]
        assert all(d["text"] == records[d["id"]]["text"] for d in deps.values())

    # a worker's own channels, and its steps, oldest first
    ns, snap = by_subtask["r1"]
    assert snap.values["passages"] and snap.values["docs_available"] >= 1
    config = {"configurable": {**thread["configurable"], "checkpoint_ns": ns}}
    steps = [s.next for s in reversed([s async for s in app.aget_state_history(config)])]
    assert steps == [("__start__",), ("search_corpus",), ("search_web",), ("extract_findings",), ()]


async def test_by_default_only_an_attempt_cut_off_leaves_its_state(
    with_custom_workers: WorkerRegistry, saver: Any, models: Any, thread: dict[str, Any]
) -> None:
    checkpointer, store = saver
    plan = {"goal": "g", "subtasks": [{"id": "p1", "worker": "polisher", "objective": "hi"}]}
    models["planner"].on("Plan", "<request>", plan)
    models["synth"].on("Report", "<request>", {"title": "t", "markdown": "Hi"})
    custom_worker.HOLD_S["p1"] = 30.0  # its first attempt outlives worker_timeout_s
    ctx = scripted_context(worker_timeout_s=0.5)
    assert ctx.worker_durability == "exit"
    app = build_graph().compile(checkpointer=checkpointer, store=store)
    out = await app.ainvoke({"request": "polish hi"}, thread, context=ctx, durability="sync")

    assert out["status"] == "done", out.get("error")
    values = (await app.aget_state(thread)).values
    first, second = values["results"]["p1"]["attempts"]
    assert first["error"] == "timed out after 0.5s" and first["verdict"] == "retry"
    assert second["verdict"] == "accept" and second["output"]["text"] == "Hi"
    # only the attempt cut off left its state: where it stopped, in both graphs
    states = await attempt_states(app, checkpointer, thread)
    assert sorted(map(recast, states)) == [
        "dispatch|run_subtask",
        "dispatch|run_subtask|polisher",
    ]
    inner = next(s for ns, s in states.items() if recast(ns).endswith("polisher"))
    outer = next(s for ns, s in states.items() if not recast(ns).endswith("polisher"))
    assert inner.next == ("draft",) and "output" not in inner.values
    assert outer.next == ("polisher",) and outer.values["worker"] == "polisher"
    assert inner.values["input"] == outer.values["input"]
    assert inner.values["input"]["attempt"] == 1


async def test_a_cut_off_attempt_and_its_retry_each_keep_their_state(
    with_custom_workers: WorkerRegistry, saver: Any, models: Any, thread: dict[str, Any]
) -> None:
    checkpointer, store = saver
    plan = {"goal": "g", "subtasks": [{"id": "p1", "worker": "polisher", "objective": "hi"}]}
    models["planner"].on("Plan", "<request>", plan)
    models["synth"].on("Report", "<request>", {"title": "t", "markdown": "Hi"})
    custom_worker.HOLD_S["p1"] = 30.0
    ctx = scripted_context(worker_timeout_s=0.5, worker_durability="async")
    app = build_graph().compile(checkpointer=checkpointer, store=store)
    out = await app.ainvoke({"request": "polish hi"}, thread, context=ctx, durability="sync")
    assert out["status"] == "done", out.get("error")

    inner = {
        ns: s
        for ns, s in (await attempt_states(app, checkpointer, thread)).items()
        if recast(ns) == "dispatch|run_subtask|polisher"
    }
    by_attempt = {s.values["input"]["attempt"]: (ns, s) for ns, s in inner.items()}
    assert sorted(by_attempt) == [1, 2]
    (ns1, cut), (ns2, done) = by_attempt[1], by_attempt[2]
    assert cut.next == ("draft",) and "output" not in cut.values
    assert done.next == () and done.values["output"] == {"status": "done", "text": "Hi"}
    # the retry runs in the same task as the attempt before it: `|1` after the task's id
    assert ns2.startswith(ns1.split("|polisher:")[0] + "|1|polisher:")


async def test_waves_shows_a_failed_workers_state_as_the_pending_tasks_subgraph(
    with_custom_workers: WorkerRegistry, models: Any, thread: dict[str, Any]
) -> None:
    plan = {"goal": "g", "subtasks": [{"id": "p1", "worker": "polisher", "objective": "crash"}]}
    models["planner"].on("Plan", "<request>", plan)
    app = build_graph().compile(checkpointer=InMemorySaver())
    with pytest.raises(RuntimeError, match="the polisher broke"):
        await app.ainvoke({"request": "crash"}, thread, context=scripted_context(scheduler="waves"))

    state = await app.aget_state(thread, subgraphs=True)
    assert state.next == ("worker",)
    [task] = state.tasks
    attempt = task.state
    assert isinstance(attempt, StateSnapshot)
    assert attempt.next == ("polisher",) and attempt.values["worker"] == "polisher"
    assert attempt.values["input"]["subtask"]["objective"] == "crash"
    [inner_task] = attempt.tasks
    inner = inner_task.state
    assert isinstance(inner, StateSnapshot)
    assert inner.next == ("polish",) and inner.values["text"] == "crash"
    assert "the polisher broke" in (inner.tasks[0].error or "")
