"""`WorkerSpec`: what the orchestrator knows of a worker, and how it checks its outputs.

Each worker module builds its own spec (`spec()`), next to its prompt, schema and rules;
`foreman.workers.registry` collects them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel

from foreman.core.context import Context
from foreman.workers.base import WorkerInput

Checker = Callable[[dict[str, Any], WorkerInput, Context], list[str]]
Renderer = Callable[[dict[str, Any]], str]
# A tool worker: a plain async function, for workers that are not a model (a database
# lookup, a sandbox, a simulator); it returns the worker's structured output.
Tool = Callable[[WorkerInput, Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class WorkerSpec:
    """A worker the orchestrator can dispatch subtasks to."""

    name: str
    """Registry key the planner uses."""
    capability: str
    """Short capability tag, e.g. `research`, `writing`."""
    description: str
    """What the planner is told the worker does."""
    output_schema: type[BaseModel]
    """Schema of `output`."""
    check: Checker
    """Worker-specific validation rules; returns problems (empty when fine)."""
    render: Renderer
    """Markdown rendering of an output for dependents and synthesis."""
    input_schema: type[BaseModel] = WorkerInput
    """Schema of the private input."""
    alternatives: tuple[str, ...] = field(default_factory=tuple)
    """Workers to substitute when this one keeps failing, in order."""
    graph: CompiledStateGraph[Any, Any, Any, Any] | None = None
    """The worker subgraph: `{"input": WorkerInput}` in, `output`/`usage`/`model` out."""
    tool: Tool | None = None
    """Instead of a subgraph: `await tool(input, context)` returns the output (no model)."""
    uses_tools: bool = True
    """Whether the worker does more than ask a model: runs code, reads a database, a corpus or
    the web. A plan revision brings in such a worker only with a person's approval (worker
    text drives revisions); False for workers that are one model call with no tools."""
    blocking_findings: Callable[[dict[str, Any]], list[str]] | None = None
    """For reviewers: the findings of a valid output that must be fixed before its dependents
    run. Non-empty makes the subtask `changes_requested`, and the planner adds a fix round."""

    def __post_init__(self) -> None:
        if (self.graph is None) == (self.tool is None):
            raise ValueError(f"worker {self.name}: give exactly one of `graph` and `tool`")
