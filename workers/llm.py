"""Generic LLM worker: the same model with a general prompt, for anything without a specialist."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import Field

from graph.context import Context
from graph.models import ainvoke_structured
from graph.prompts import render
from graph.schemas import WorkerStatus
from workers.base import WorkerInput, WorkerState, request_prompt

NAME = "llm"


class Answer(WorkerStatus):
    """A free-form answer to the objective."""

    text: str = Field(default="", description="The answer, in Markdown.")


async def answer(state: WorkerState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask the worker model to do the objective."""
    inp = WorkerInput.model_validate(state["input"])
    spec = runtime.context.model_for_worker(NAME)
    result, usage = await ainvoke_structured(
        spec,
        Answer,
        [SystemMessage(render("llm")), HumanMessage(request_prompt(inp))],
        method=runtime.context.structured_output_method,
    )
    return {"output": result.model_dump(), "usage": usage, "model": spec}


def render_answer(output: dict[str, Any]) -> str:
    """The answer text."""
    return str(output.get("text", ""))


def check_answer(output: dict[str, Any], inp: WorkerInput, ctx: Context) -> list[str]:
    """LLM worker rules: a non-empty answer."""
    return [] if str(output.get("text", "")).strip() else ["the answer is empty"]


def build() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the generic LLM worker subgraph."""
    builder = StateGraph(WorkerState, context_schema=Context)
    builder.add_node(answer)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    return builder.compile(name="llm", checkpointer=False)
