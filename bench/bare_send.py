"""The bare LangGraph baselines: the same DAGs as plain `Send` waves, without Foreman.

`bare_graph` routes every ready task with `Send` from a `collect` node (a superstep ends
with its slowest task); its task nodes sleep or invoke the sim worker subgraph.
`task_floor_graph` runs one `langgraph.func.task` per subtask from a single node, Foreman's
skeleton without Foreman's code. Each run logs wall-clock timestamps into a `log` dict
that the benchmarks read (`task_span`, the `collect` window).
"""

from __future__ import annotations

import asyncio
import operator
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.func import task as lg_task
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from bench.simulation import Dag, dag_plan
from foreman import Context
from foreman.core.schemas import Plan
from foreman.workers.base import WorkerInput


class WaveState(TypedDict):
    """State of the bare graphs: the ids of finished tasks."""

    done: Annotated[list[str], operator.add]


class TaskArg(TypedDict):
    """What one `Send` carries."""

    id: str


def worker_inputs(dag: Dag, unit: float) -> dict[str, dict[str, Any]]:
    """The `WorkerInput` dumps Foreman would give the sim worker (dependencies left out)."""
    plan = Plan.model_validate(dag_plan(dag, unit))
    return {s.id: WorkerInput(subtask=s).model_dump(mode="json") for s in plan.subtasks}


def bare_graph(
    dag: Dag, unit: float, log: dict[str, Any], worker: Any = None
) -> StateGraph[Any, Any, Any, Any]:
    """`collect` sends every ready task; a superstep ends with its slowest task.

    A task node sleeps its latency, or, with `worker` (a compiled worker subgraph), invokes
    that subgraph with the subtask's `WorkerInput` the way Foreman's dispatch does.
    """
    deps = {tid: set(t["deps"]) for tid, t in dag.items()}
    inputs = worker_inputs(dag, unit) if worker is not None else {}
    ctx = Context()
    log["collect"], log["tasks"] = [], {}

    def collect(state: WaveState) -> dict[str, Any]:
        log["collect"].append((time.time(), time.time()))  # (start, end): it does nothing
        return {}

    def route(state: WaveState) -> list[Send] | str:
        done = set(state["done"])
        ready = [t for t in dag if t not in done and deps[t] <= done]
        return [Send("task", {"id": t}) for t in ready] or END

    async def task(arg: TaskArg) -> dict[str, Any]:
        tid, start = arg["id"], time.time()
        if worker is None:
            await asyncio.sleep(dag[tid]["latency"] * unit)
        else:
            await worker.ainvoke({"input": inputs[tid]}, context=ctx)
        log["tasks"][tid] = (start, time.time())
        return {"done": [tid]}

    builder = StateGraph(WaveState)
    builder.add_node("collect", collect)
    builder.add_node("task", task)  # type: ignore[arg-type]
    builder.add_edge(START, "collect")
    builder.add_conditional_edges("collect", route, ["task", END])
    builder.add_edge("task", "collect")
    return builder


def task_floor_graph(dag: Dag, log: dict[str, Any], worker: Any) -> StateGraph[Any, Any, Any, Any]:
    """Foreman's skeleton without Foreman: one node runs a `langgraph.func.task` per subtask.

    For independent subtasks only: each task invokes the worker subgraph; the node gathers
    them. `collect` → `work` → `collect`, timed like the other baselines.
    """
    inputs = worker_inputs(dag, 0.0)
    ctx = Context()
    log["collect"], log["tasks"] = [], {}

    @lg_task(name="floor_subtask")  # type: ignore[arg-type]
    async def floor_subtask(tid: str) -> str:
        await worker.ainvoke({"input": inputs[tid]}, context=ctx)
        return tid

    def collect(state: WaveState) -> dict[str, Any]:
        log["collect"].append((time.time(), time.time()))
        return {}

    def route(state: WaveState) -> str:
        return END if state["done"] else "work"

    async def work(state: WaveState) -> dict[str, Any]:
        calls: list[Any] = [floor_subtask(t) for t in dag]  # type: ignore[arg-type]
        return {"done": list(await asyncio.gather(*calls))}

    builder = StateGraph(WaveState)
    builder.add_node("collect", collect)
    builder.add_node("work", work)
    builder.add_edge(START, "collect")
    builder.add_conditional_edges("collect", route, ["work", END])
    builder.add_edge("work", "collect")
    return builder


async def run_bare(builder: StateGraph[Any, Any, Any, Any], dag: Dag, workdir: Path) -> None:
    """One run of a bare graph on a fresh SQLite file."""
    db = workdir / f"{uuid.uuid4().hex}.sqlite"
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        await saver.setup()
        app = builder.compile(checkpointer=saver)
        config: Any = {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": 1000}
        async for _ in app.astream({"done": []}, config, stream_mode="custom"):
            pass
        state = (await app.aget_state(config)).values
    db.unlink(missing_ok=True)
    if sorted(state["done"]) != sorted(dag):
        raise RuntimeError("bare run did not finish every task")


def task_span(log: dict[str, Any]) -> float:
    """First task start to last task end in a bare run."""
    spans = log["tasks"].values()
    return max(e for _, e in spans) - min(s for s, _ in spans)
