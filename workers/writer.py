"""Writer worker: turns upstream findings into a report section, keeping their citations."""

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
from graph.schemas import Claim, WorkerStatus
from workers.base import WorkerInput, WorkerState, citations_in, request_prompt

NAME = "writer"


class Section(WorkerStatus):
    """A report section written from the inputs."""

    title: str = Field(default="", description="Section title.")
    markdown: str = Field(default="", description="Section body with citation markers.")
    claims: list[Claim] = Field(default_factory=list, description="Statements and citations.")


async def write_section(state: WorkerState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask the writer model for the section."""
    inp = WorkerInput.model_validate(state["input"])
    spec = runtime.context.model_for_worker(NAME)
    section, usage = await ainvoke_structured(
        spec,
        Section,
        [SystemMessage(render("writer")), HumanMessage(request_prompt(inp))],
        method=runtime.context.structured_output_method,
    )
    return {"output": section.model_dump(), "usage": usage, "model": spec}


def render_section(output: dict[str, Any]) -> str:
    """The section body (the title travels as metadata)."""
    return str(output.get("markdown", ""))


def check_section(output: dict[str, Any], inp: WorkerInput, ctx: Context) -> list[str]:
    """Writer rules: a body, and no citation that its inputs did not provide."""
    problems: list[str] = []
    if not str(output.get("markdown", "")).strip():
        problems.append("the section body is empty")
    allowed = citations_in([d.output for d in inp.dependencies.values()])
    if allowed:
        cited = citations_in([output])
        if not cited:
            problems.append("the section keeps none of the citations from its inputs")
        invented = sorted(cited - allowed)
        if invented:
            problems.append(f"cites sources its inputs do not contain: {', '.join(invented)}")
    return problems


def build() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the writer worker subgraph."""
    builder = StateGraph(WorkerState, context_schema=Context)
    builder.add_node(write_section)
    builder.add_edge(START, "write_section")
    builder.add_edge("write_section", END)
    return builder.compile(name="writer", checkpointer=False)
