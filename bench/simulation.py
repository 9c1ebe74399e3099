"""The simulated workload: the reference DAGs as Foreman plans, the bench model, the sim worker.

A reference DAG (`bench/dags.json`) becomes a Foreman `Plan` with one `sim`
subtask per task, its latency written into the objective; `BenchChatModel` (registered as
the `bench` provider) answers the planner's structured `Plan` call with that plan and the
synthesizer's text call with a fixed stub; the `sim` worker only sleeps the seconds its
objective gives, as a tool worker or as a one-node subgraph. `bench.durability` and the
tests reuse these pieces.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.graph import END, START, StateGraph

from foreman.core.offline.model import OfflineChatModel
from foreman.core.schemas import WorkerStatus
from foreman.core.state import empty_usage
from foreman.workers.base import WorkerInput, WorkerState
from foreman.workers.registry import WorkerRegistry, WorkerSpec

# A byte-identical copy of the shared reference graphs (`../shared/bench/dags.json` in the
# maintainers' workspace), kept in the repository because a clone has no `../shared`.
# Refresh it from there with `cp ../shared/bench/dags.json bench/dags.json`.
DAGS = Path(__file__).resolve().parent / "dags.json"

Dag = dict[str, dict[str, Any]]  # id -> {"latency": float, "deps": [ids]}


def load_dags(path: str | Path = DAGS) -> dict[str, Dag]:
    """The reference DAGs by name, from a `dags.json` file."""
    graphs: dict[str, Dag] = json.loads(Path(path).read_text(encoding="utf-8"))["graphs"]
    return graphs


# --- the bench provider: the planner answers with a DAG, the synthesizer with a stub ---

PLANS: dict[str, dict[str, Any]] = {}  # model name -> Plan dump (`bench:NAME` specs)


def _objective(latency: float, unit: float) -> str:
    return f"simulated work: sleep {latency * unit!r} s ({latency:g} units)"


def _seconds(objective: str) -> float:
    match = re.search(r"sleep (\S+) s", objective)
    assert match, objective
    return float(match.group(1))


def dag_plan(dag: Dag, unit: float) -> dict[str, Any]:
    """The DAG as a Foreman `Plan` dump: one `sim` subtask per task.

    Each subtask carries the duration estimate a planner would give (`estimated_seconds`),
    which the scheduler uses to start the longest chains first.
    """
    return {
        "goal": "benchmark",
        "subtasks": [
            {
                "id": tid,
                "worker": "sim",
                "objective": _objective(float(t["latency"]), unit),
                "inputs": list(t["deps"]),
                "estimated_seconds": float(t["latency"]) * unit,
            }
            for tid, t in dag.items()
        ],
    }


class BenchChatModel(OfflineChatModel):
    """Answers `Plan` with `PLANS[model_name]` and the synthesizer's text with a stub, instantly."""

    model_name: str = "x"

    def _answer(self, tools: list[dict[str, Any]]) -> ChatResult:
        name = tools[0]["function"]["name"] if tools else "text"
        usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
        if name == "text":
            message = AIMessage(content="all subtasks done", usage_metadata=usage)
        elif name == "Plan":
            message = AIMessage(
                content="",
                tool_calls=[{"name": name, "args": PLANS[self.model_name], "id": "bench-plan"}],
                usage_metadata=usage,
            )
        else:
            raise ValueError(f"the bench provider has no answer for {name!r}")
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._answer(kwargs.get("tools") or [])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._answer(kwargs.get("tools") or [])


# --- the sim worker ----------------------------------------------------------------------


class Simulated(WorkerStatus):
    """Output of the sim worker."""

    text: str = ""


async def _sleep(state: WorkerState, runtime: Any = None) -> dict[str, Any]:
    inp = WorkerInput.model_validate(state["input"])
    await asyncio.sleep(_seconds(inp.subtask.objective))
    return {
        "output": {"status": "done", "text": f"{inp.subtask.id} done"},
        "usage": empty_usage(),
        "model": "-",
    }


async def _sleep_tool(inp: WorkerInput, ctx: Any) -> dict[str, Any]:
    await asyncio.sleep(_seconds(inp.subtask.objective))
    return {"status": "done", "text": f"{inp.subtask.id} done"}


def bench_registry(call: str = "subgraph") -> WorkerRegistry:
    """A registry with one worker, `sim`, that sleeps the seconds in its objective.

    `call="tool"` registers it as a tool worker (`WorkerSpec.tool`, a plain async
    function); `call="subgraph"` as a one-node LangGraph subgraph.
    """
    builder = StateGraph(WorkerState)
    builder.add_node("sleep", _sleep)
    builder.add_edge(START, "sleep")
    builder.add_edge("sleep", END)
    return WorkerRegistry(
        [
            WorkerSpec(
                name="sim",
                capability="simulation",
                description="sleeps for the number of seconds its objective gives",
                graph=builder.compile(name="sim", checkpointer=False)
                if call == "subgraph"
                else None,
                tool=_sleep_tool if call == "tool" else None,
                output_schema=Simulated,
                check=lambda out, inp, corpus: [],
                render=lambda out: str(out.get("text", "")),
            )
        ]
    )
