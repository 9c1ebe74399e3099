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
    from foreman.workers import code, llm, research, writer
    from foreman.workers import data as analysis
    from foreman.workers import reviewer as review
    from foreman.workers.support import classify, lookup, policy, response

    return WorkerRegistry(
        [
            WorkerSpec(
                name="research",
                capability="research",
                description="searches the local document corpus (BM25), and the web when "
                "configured, and returns findings that cite the passages they come from",
                graph=research.build(),
                output_schema=research.ResearchFindings,
                check=research.check_findings,
                render=research.render_findings,
            ),
            WorkerSpec(
                name="writer",
                uses_tools=False,
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
                uses_tools=False,
                capability="general",
                description="a general-purpose model for anything else: analysis, "
                "comparison, drafting, answering from its inputs",
                graph=llm.build(),
                output_schema=llm.Answer,
                check=llm.check_answer,
                render=llm.render_answer,
            ),
            WorkerSpec(
                name="code",
                capability="coding",
                description="writes a Python component and its pytest tests, runs them in a "
                "sandbox and returns the files with the test result; give it a well-scoped "
                "component per subtask; with code results as inputs it fixes or assembles them",
                graph=code.build(),
                output_schema=code.CodeResult,
                check=code.check_code,
                render=code.render_code,
            ),
            WorkerSpec(
                name="review",
                uses_tools=False,
                capability="review",
                description="reviews the results of its inputs (code or text) against the "
                "objective and criteria and returns findings; a review that requests changes "
                "makes the orchestrator add fix subtasks and a new review",
                graph=review.build(),
                output_schema=review.ReviewReport,
                check=review.check_review,
                render=review.render_review,
                blocking_findings=review.blocking_findings,
            ),
            WorkerSpec(
                name="data",
                capability="data analysis",
                description="answers a question about a CSV or SQLite dataset (name the file "
                "in the objective) by running pandas or SQL in a sandbox; returns tables and "
                "PNG plots",
                graph=analysis.build(),
                output_schema=analysis.AnalysisResult,
                check=analysis.check_analysis,
                render=analysis.render_analysis,
            ),
            WorkerSpec(
                name="classify",
                uses_tools=False,
                capability="customer service",
                description="triages a customer's message (put the message verbatim in the "
                "objective): intent, urgency, and the order numbers and emails it contains",
                graph=classify.build(),
                output_schema=classify.Classification,
                check=classify.check_classification,
                render=classify.render_classification,
            ),
            WorkerSpec(
                name="lookup",
                capability="customer service",
                description="reads the customer's account and orders from the shop database "
                "(parameterized SQL, no model), using identifiers from its inputs or objective",
                tool=lookup.lookup,
                output_schema=lookup.LookupResult,
                check=lookup.check_lookup,
                render=lookup.render_lookup,
            ),
            WorkerSpec(
                name="policy",
                uses_tools=False,
                capability="customer service",
                description="finds the written customer-service rules that apply to a "
                "request and quotes them word for word",
                graph=policy.build(),
                output_schema=policy.PolicyDecision,
                check=policy.check_policy,
                render=policy.render_policy,
            ),
            WorkerSpec(
                name="response",
                uses_tools=False,
                capability="customer service",
                description="drafts the reply to the customer from lookup and policy results, "
                "applying the rules to the order facts",
                graph=response.build(),
                output_schema=response.CustomerReply,
                check=response.check_reply,
                render=response.render_reply,
            ),
            *discover_workers(),
        ]
    )
