"""Generic LLM worker: the same model with a general prompt, for anything without a specialist."""

from __future__ import annotations

from typing import Any

from langgraph.graph.state import CompiledStateGraph
from pydantic import Field

from foreman.core.context import Context
from foreman.core.schemas import WorkerStatus
from foreman.workers.base import WorkerInput, one_call_worker
from foreman.workers.spec import WorkerSpec

NAME = "llm"


class Answer(WorkerStatus):
    """A free-form answer to the objective."""

    text: str = Field(default="", description="The answer, in Markdown.")


def render_answer(output: dict[str, Any]) -> str:
    """The answer text."""
    return str(output.get("text", ""))


def check_answer(output: dict[str, Any], inp: WorkerInput, ctx: Context) -> list[str]:
    """LLM worker rules: a non-empty answer."""
    return [] if str(output.get("text", "")).strip() else ["the answer is empty"]


def build() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the llm worker subgraph."""
    return one_call_worker(NAME, Answer, node="answer")


def spec() -> WorkerSpec:
    """The `llm` worker as the planner sees it and the validator checks it."""
    return WorkerSpec(
        name="llm",
        uses_tools=False,
        capability="general",
        description="a general-purpose model for anything else: analysis, "
        "comparison, drafting, answering from its inputs",
        graph=build(),
        output_schema=Answer,
        check=check_answer,
        render=render_answer,
    )
