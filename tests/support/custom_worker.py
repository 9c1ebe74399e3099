"""Workers defined outside Foreman, registered through $FOREMAN_WORKERS in tests.

`make` is a tool worker (a plain function); `make_polisher` a graph worker of two steps,
whose first step can be held (`HOLD_S`, on first attempts) and whose second can fail
(an objective containing "crash").
"""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.graph import END, START, StateGraph

from foreman.core.schemas import WorkerStatus
from foreman.workers.base import WorkerInput, WorkerState
from foreman.workers.registry import WorkerSpec

HOLD_S: dict[str, float] = {}
"""Subtask id -> seconds the polisher's first attempt waits in its `draft` step."""


class Shout(WorkerStatus):
    text: str = ""


async def shout(inp: WorkerInput, ctx: Any) -> dict[str, Any]:
    return {"status": "done", "text": inp.subtask.objective.upper()}


def make() -> WorkerSpec:
    return WorkerSpec(
        name="shouter",
        capability="formatting",
        description="repeats its objective in capital letters",
        output_schema=Shout,
        check=lambda o, i, c: [],
        render=lambda o: str(o.get("text", "")),
        tool=shout,
    )


async def draft(state: WorkerState) -> dict[str, Any]:
    inp = WorkerInput.model_validate(state["input"])
    if inp.attempt == 1:
        await asyncio.sleep(HOLD_S.get(inp.subtask.id, 0.0))
    return {"text": inp.subtask.objective}


async def polish(state: WorkerState) -> dict[str, Any]:
    if "crash" in state["text"]:
        raise RuntimeError("the polisher broke")
    return {"output": {"status": "done", "text": state["text"].title()}, "model": "-"}


def make_polisher() -> WorkerSpec:
    builder = StateGraph(WorkerState)
    builder.add_node(draft)
    builder.add_node(polish)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "polish")
    builder.add_edge("polish", END)
    return WorkerSpec(
        name="polisher",
        capability="formatting",
        description="drafts its objective, then polishes it into title case",
        graph=builder.compile(name="polisher", checkpointer=False),
        output_schema=Shout,
        check=lambda o, i, c: [],
        render=lambda o: str(o.get("text", "")),
        uses_tools=False,
    )
