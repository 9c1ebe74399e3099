"""Writer worker: turns upstream findings into a report section, keeping their citations."""

from __future__ import annotations

from typing import Any

from langgraph.graph.state import CompiledStateGraph
from pydantic import Field

from foreman.core.context import Context
from foreman.core.schemas import Claim, WorkerStatus
from foreman.workers.base import WorkerInput, citations_in, one_call_worker
from foreman.workers.spec import WorkerSpec

NAME = "writer"


class Section(WorkerStatus):
    """A report section written from the inputs."""

    title: str = Field(default="", description="Section title.")
    markdown: str = Field(default="", description="Section body with citation markers.")
    claims: list[Claim] = Field(default_factory=list, description="Statements and citations.")


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
    return one_call_worker(NAME, Section, node="write_section")


def spec() -> WorkerSpec:
    """The `writer` worker as the planner sees it and the validator checks it."""
    return WorkerSpec(
        name="writer",
        uses_tools=False,
        capability="writing",
        description="writes a report section from the outputs of its inputs, "
        "keeping their citations",
        graph=build(),
        output_schema=Section,
        check=check_section,
        render=render_section,
        alternatives=("llm",),
    )
