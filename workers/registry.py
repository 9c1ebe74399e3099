"""The worker registry: what the planner may dispatch to, and how each worker is checked."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel

from graph.context import Context
from workers.base import WorkerInput

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

    def __post_init__(self) -> None:
        if (self.graph is None) == (self.tool is None):
            raise ValueError(f"worker {self.name}: give exactly one of `graph` and `tool`")


class WorkerRegistry(Mapping[str, WorkerSpec]):
    """An immutable mapping of worker name to spec."""

    def __init__(self, specs: list[WorkerSpec]):
        names = [s.name for s in specs]
        if clash := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"two workers are named {', '.join(clash)}")
        self._specs = {s.name: s for s in specs}
        for spec in specs:
            unknown = [a for a in spec.alternatives if a not in self._specs]
            if unknown:
                raise ValueError(f"worker {spec.name}: unknown alternatives {unknown}")

    def __getitem__(self, name: str) -> WorkerSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def describe(self) -> str:
        """One line per worker, the way the planner prompt lists them."""
        return "\n".join(
            f"  - {s.name}: {s.description} (capability: {s.capability})"
            for s in self._specs.values()
        )


ENTRY_POINT_GROUP = "foreman.workers"


def _as_specs(obj: Any, origin: str) -> list[WorkerSpec]:
    """A WorkerSpec, a list of them, or a callable returning either."""
    if callable(obj) and not isinstance(obj, WorkerSpec):
        obj = obj()
    specs = obj if isinstance(obj, list | tuple) else [obj]
    for spec in specs:
        if not isinstance(spec, WorkerSpec):
            raise TypeError(f"{origin} gave {type(spec).__name__}, not a WorkerSpec")
    return list(specs)


def discover_workers() -> list[WorkerSpec]:
    """Workers added without editing Foreman: entry points, then `$FOREMAN_WORKERS`.

    A package declares `[project.entry-points."foreman.workers"] name = "pkg.mod:factory"`;
    or `FOREMAN_WORKERS="pkg.mod:factory,other.mod:SPEC"` names them directly. Each target is
    a `WorkerSpec`, a list of them, or a callable returning either.
    """
    specs: list[WorkerSpec] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        specs += _as_specs(ep.load(), f"entry point {ep.name}")
    for target in filter(None, os.environ.get("FOREMAN_WORKERS", "").split(",")):
        module, _, attr = target.strip().partition(":")
        if not attr:
            raise ValueError(f"FOREMAN_WORKERS entry {target!r} must be module:attribute")
        specs += _as_specs(getattr(import_module(module), attr), target)
    return specs


@lru_cache(maxsize=1)
def default_registry() -> WorkerRegistry:
    """The built-in workers (research, writer, llm) plus discovered ones."""
    from workers import llm, research, writer

    return WorkerRegistry(
        [
            WorkerSpec(
                name="research",
                capability="research",
                description="searches the local document corpus (BM25) and returns findings "
                "that cite the passages they come from",
                graph=research.build(),
                output_schema=research.ResearchFindings,
                check=research.check_findings,
                render=research.render_findings,
            ),
            WorkerSpec(
                name="writer",
                capability="writing",
                description="writes a report section from the outputs of its inputs, "
                "keeping their citations",
                graph=writer.build(),
                output_schema=writer.Section,
                check=writer.check_section,
                render=writer.render_section,
                alternatives=("llm",),
            ),
            WorkerSpec(
                name="llm",
                capability="general",
                description="a general-purpose model for anything else: analysis, "
                "comparison, drafting, answering from its inputs",
                graph=llm.build(),
                output_schema=llm.Answer,
                check=llm.check_answer,
                render=llm.render_answer,
            ),
            *discover_workers(),
        ]
    )
