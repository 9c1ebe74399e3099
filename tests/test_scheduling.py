"""Dependency scheduling, the parallelism cap, and resume after a crash mid-dispatch."""

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from foreman import build_graph
from tests.conftest import scripted_context
from tests.support import sim

TWO_CHAINS = {
    "x1": (0.4, []), "x2": (0.05, ["x1"]), "y1": (0.05, []), "y2": (0.4, ["y1"]),
    "z": (0.05, ["x2", "y2"]),
}  # fmt: skip


@pytest.fixture(autouse=True)
def _reset():
    sim.reset()
    yield
    sim.reset()


def sim_app():
    return build_graph(sim.registry()).compile(checkpointer=InMemorySaver())


async def run_dag(models, thread, dag, **ctx):
    models["planner"].on("Plan", "<request>", sim.dag_plan(dag))
    models["synth"].on("text", "<request>", "all done")
    app = sim_app()
    out = await app.ainvoke({"request": "simulate"}, thread, context=scripted_context(**ctx))
    return app, out


async def test_subtask_starts_when_its_own_dependencies_are_done(models, thread):
    _, out = await run_dag(models, thread, TWO_CHAINS, max_parallel=8)
    assert out["status"] == "done"
    iv = sim.INTERVALS
    # y2 waits for y1 only: it starts long before the unrelated x1 finishes (no waves).
    assert iv["y2"][0] < iv["x1"][1] - 0.2
    assert iv["y2"][0] >= iv["y1"][1]
    assert iv["z"][0] >= max(iv["x2"][1], iv["y2"][1])


async def test_parallelism_is_capped(models, thread):
    dag = {f"t{i}": (0.05, []) for i in range(6)}
    await run_dag(models, thread, dag, max_parallel=2)
    spans = sorted(sim.INTERVALS.values())
    for start, _ in spans:
        overlapping = sum(1 for s, e in spans if s <= start < e)
        assert overlapping <= 2


async def test_dependents_receive_only_their_inputs(models, thread):
    dag = {"a": (0.01, []), "b": (0.01, []), "c": (0.01, ["a"])}
    app, _ = await run_dag(models, thread, dag)
    results = app.get_state(thread).values["results"]
    assert results["c"]["text"] == "c done (inputs: a)"
    assert results["a"]["text"] == "a done (inputs: )"


async def test_resume_after_crash_does_not_rerun_finished_subtasks(models, thread):
    # a finishes first, then d (needs a), while slow b is running; c (needs b) crashes.
    dag = {"a": (0.01, []), "b": (0.15, []), "c": (0.01, ["b"]), "d": (0.01, ["a"]),
           "e": (0.01, ["c", "d"])}  # fmt: skip
    models["planner"].on("Plan", "<request>", sim.dag_plan(dag))
    models["synth"].on("text", "<request>", "all done")
    app = sim_app()
    sim.CRASH_ON.add("c")
    with pytest.raises(RuntimeError, match="simulated crash in c"):
        await app.ainvoke({"request": "simulate"}, thread, context=scripted_context())
    assert app.get_state(thread).next == ("dispatch",)
    assert dict(sim.RUNS) == {"a": 1, "b": 1, "c": 1, "d": 1}
    sim.CRASH_ON.clear()
    out = await app.ainvoke(None, thread, context=scripted_context())
    assert out["status"] == "done"
    assert dict(sim.RUNS) == {"a": 1, "b": 1, "c": 2, "d": 1, "e": 1}
    results = app.get_state(thread).values["results"]
    for sid in dag:  # every result is attached to the subtask that produced it
        assert results[sid]["id"] == sid and results[sid]["text"].startswith(f"{sid} done")
    assert results["e"]["text"] == "e done (inputs: c,d)"


async def test_failed_dependency_blocks_dependents(models, thread):
    dag = {"a": (0.01, []), "b": (0.01, ["a"])}
    sim.CRASH_ON.add("zzz")  # nothing crashes; a fails validation instead
    reg = sim.registry()
    spec = reg["sim"]
    from dataclasses import replace

    from foreman.workers.registry import WorkerRegistry

    failing = replace(spec, check=lambda out, inp, c: ["bad"] if inp.subtask.id == "a" else [])
    app = build_graph(WorkerRegistry([failing])).compile(checkpointer=InMemorySaver())
    models["planner"].on("Plan", "<request>", sim.dag_plan(dag))
    ctx = scripted_context(max_replans=0, max_attempts=2)
    await app.ainvoke({"request": "simulate"}, thread, context=ctx)
    state = app.get_state(thread)
    assert state.interrupts and state.interrupts[0].value["kind"] == "escalation"
    assert sim.RUNS["a"] == 2 and sim.RUNS["b"] == 0


async def test_tool_workers_run_without_a_subgraph(models, thread):
    from foreman.core.schemas import WorkerStatus
    from foreman.workers.registry import WorkerRegistry, WorkerSpec

    seen = []

    async def lookup(inp, ctx):
        seen.append((inp.subtask.id, sorted(inp.dependencies), ctx.max_parallel))
        return {"status": "done", "text": f"{inp.subtask.id} looked up"}

    spec = WorkerSpec(
        name="sim",
        capability="lookup",
        description="a plain async function",
        output_schema=WorkerStatus,
        check=lambda o, i, c: [],
        render=lambda o: o["text"],
        tool=lookup,
    )
    models["planner"].on("Plan", "<request>", sim.dag_plan({"a": (0, []), "b": (0, ["a"])}))
    models["synth"].on("text", "<request>", "ok")
    app = build_graph(WorkerRegistry([spec])).compile(checkpointer=InMemorySaver())
    out = await app.ainvoke({"request": "x"}, thread, context=scripted_context(max_parallel=3))
    assert out["status"] == "done"
    assert seen == [("a", [], 3), ("b", ["a"], 3)]
    assert app.get_state(thread).values["results"]["b"]["text"] == "b looked up"


def test_a_worker_is_a_subgraph_a_tool_or_a_runner_only():
    from foreman.core.schemas import WorkerStatus
    from foreman.workers.registry import WorkerSpec

    base = dict(
        name="w",
        capability="c",
        description="d",
        output_schema=WorkerStatus,
        check=lambda o, i, c: [],
        render=str,
    )
    with pytest.raises(ValueError, match="exactly one of `graph`, `tool` and `runner`"):
        WorkerSpec(**base)
    with pytest.raises(ValueError, match="exactly one"):
        WorkerSpec(**base, graph=sim.registry()["sim"].graph, tool=lambda i, c: None)


async def test_waves_scheduler_sends_one_round_at_a_time(models, thread):
    app, out = await run_dag(models, thread, TWO_CHAINS, scheduler="waves", max_parallel=8)
    assert out["status"] == "done"
    iv = sim.INTERVALS
    # a Send round ends with its slowest branch: y2 waits for x1 although it only needs y1
    assert iv["y2"][0] >= iv["x1"][1]
    rounds = [
        e["detail"]["wave"]
        for e in app.get_state(thread).values["audit"]
        if e["kind"] == "dispatch_round"
    ]
    assert [sorted(r) for r in rounds] == [["x1", "y1"], ["x2", "y2"], ["z"]]
    history = [s async for s in app.aget_state_history(thread)]
    assert any("worker" in (t.name for t in s.tasks) for s in history)  # Send branches
