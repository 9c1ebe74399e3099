"""A simulated worker that only waits: for scheduling and durability tests."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from typing import Any

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel

from foreman.core.schemas import WorkerStatus
from foreman.workers.base import WorkerInput, WorkerState
from foreman.workers.registry import WorkerRegistry, WorkerSpec

RUNS: Counter[str] = Counter()
CRASH_ON: set[str] = set()
INTERVALS: dict[str, tuple[float, float]] = {}
# Subtask id -> extra seconds it waits after logging its start (crash tests hold a subtask
# mid-work this way until the parent kills the process).
HOLD: dict[str, float] = {}


def log(line: str) -> None:
    """Append to $SIM_LOG, so a parent process can see what a killed child did."""
    if path := os.environ.get("SIM_LOG"):
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


class Waited(WorkerStatus):
    text: str = ""


async def wait(state: WorkerState) -> dict[str, Any]:
    inp = WorkerInput.model_validate(state["input"])
    sid = inp.subtask.id
    RUNS[sid] += 1
    log(f"start {sid}")
    seconds = float(inp.subtask.objective.split()[-1])
    start = time.perf_counter()
    await asyncio.sleep(seconds + HOLD.get(sid, 0.0))
    log(f"end {sid}")
    if sid in CRASH_ON:
        raise RuntimeError(f"simulated crash in {sid}")
    INTERVALS[sid] = (start, time.perf_counter())
    deps = ",".join(sorted(inp.dependencies))
    return {
        "output": {"status": "done", "text": f"{sid} done (inputs: {deps})"},
        "usage": {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "calls": 0},
        "model": "-",
    }


def registry() -> WorkerRegistry:
    builder = StateGraph(WorkerState)
    builder.add_node(wait)
    builder.add_edge(START, "wait")
    builder.add_edge("wait", END)
    spec = WorkerSpec(
        name="sim",
        capability="test",
        description="waits the seconds its objective ends with",
        graph=builder.compile(checkpointer=False),
        output_schema=Waited,
        check=lambda out, inp, corpus: [],
        render=lambda out: str(out.get("text", "")),
    )
    return WorkerRegistry([spec])


def dag_plan(dag: dict[str, tuple[float, list[str]]]) -> dict[str, Any]:
    return {
        "goal": "simulated",
        "subtasks": [
            {"id": sid, "worker": "sim", "objective": f"wait {lat}", "inputs": deps}
            for sid, (lat, deps) in dag.items()
        ],
    }


def reset() -> None:
    RUNS.clear()
    CRASH_ON.clear()
    INTERVALS.clear()
    HOLD.clear()


assert issubclass(Waited, BaseModel)
