"""`WorkerSpec`: what the orchestrator knows of a worker, and how it checks its outputs.

Each worker module builds its own spec (`spec()`), next to its prompt, schema and rules;
`foreman.workers.registry` collects them.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel

from foreman.core.context import Context
from foreman.core.resources import PROMPTS_DIR
from foreman.core.state import ToolCallRecord, Usage
from foreman.workers.base import WorkerInput

Checker = Callable[[dict[str, Any], WorkerInput, Context], list[str]]
Renderer = Callable[[dict[str, Any]], str]
# A tool worker: a plain async function, for workers that are not a model (a database
# lookup, a sandbox, a simulator); it returns the worker's structured output.
Tool = Callable[[WorkerInput, Any], Awaitable[dict[str, Any]]]


class WorkerRun(TypedDict):
    """What a runner returns for one attempt."""

    output: dict[str, Any]
    """The worker's structured output, including `status`, `error` and `question`."""
    usage: Usage
    """Tokens and cost of the attempt's model calls (a remote agent's, when it reports them)."""
    model: str
    """Model spec used, or where the work ran (`remote:URL`)."""
    tool_calls: list[ToolCallRecord]
    """The tool calls made, for the attempt's audit record."""


# A runner: a worker declared in a workers file (a prompt, a tool-using agent, MCP tools, a
# remote graph or A2A agent); it reports its own usage and tool calls.
Runner = Callable[[WorkerInput, Context], Awaitable[WorkerRun]]


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
    runner: Runner | None = None
    """Instead of either: `await runner(input, context)` returns a `WorkerRun`."""
    model_label: Callable[[Context], str] | None = None
    """What an attempt runs on when it is not `Context.model_for_worker` (a declared worker's
    own model, a remote agent's address): for the audit, progress and cost estimates."""
    origin: str = "built-in"
    """Where the worker was declared: built-in, an entry point, `FOREMAN_WORKERS`, a file."""
    timeout_s: float | None = None
    """Wall-clock limit of one attempt (default: `Context.worker_timeout_s`)."""
    max_tokens: int = 0
    """Most tokens one attempt may spend; an attempt past it fails (0: no cap)."""
    max_cost_usd: float = 0.0
    """Most USD one attempt may spend; an attempt past it fails (0: no cap)."""
    uses_tools: bool = True
    """Whether the worker does more than ask a model: runs code, reads a database, a corpus or
    the web. A plan revision brings in such a worker only with a person's approval (worker
    text drives revisions); False for workers that are one model call with no tools."""
    blocking_findings: Callable[[dict[str, Any]], list[str]] | None = None
    """For reviewers: the findings of a valid output that must be fixed before its dependents
    run. Non-empty makes the subtask `changes_requested`, and the planner adds a fix round."""

    version: str = ""
    """What defines the worker's behaviour, hashed: part of its cross-run cache key, so an
    edited worker does not reuse its old results. Empty: `default_version` fills it in."""
    cacheable: bool = True
    """Whether an accepted result may be reused by a later run with the same subtask, inputs
    and model (`foreman.orchestration.result_cache`). False for workers that read live or
    per-person data (the shop database), where yesterday's answer is not today's."""
    reads: tuple[str, ...] = ()
    """`Context` fields naming the data the worker reads (`corpus_dir`, `datasets_dir`, ...):
    their values are part of its cache key, so another corpus is another result."""

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.graph, self.tool, self.runner)) != 1:
            raise ValueError(
                f"worker {self.name}: give exactly one of `graph`, `tool` and `runner`"
            )
        if not self.version:  # frozen: set once, here
            object.__setattr__(self, "version", default_version(self))

    def model_for(self, ctx: Context) -> str:
        """The model spec an attempt of this worker runs on (`-`: a tool, no model)."""
        if self.model_label is not None:
            return self.model_label(ctx)
        return "-" if self.tool is not None else ctx.model_for_worker(self.name)


def default_version(spec: WorkerSpec) -> str:
    """A hash of what defines a worker's behaviour and is cheap to read.

    Its name, capability and description, its output's JSON schema, the source of the module
    its rules (`check`) are written in, which for a built-in worker is the module holding
    its graph and prompt choice, and `prompts/<name>.md` when there is one. Code the worker
    shares with others (`workers/base.py`, the model clients) is not part of it: changing
    that calls for a TTL, `cache=refresh` or a new version given by hand. Declared workers
    pass their declaration's hash instead (`foreman.workers.declared.build`).
    """
    parts: list[str] = [
        spec.name,
        spec.capability,
        spec.description,
        json.dumps(spec.output_schema.model_json_schema(), sort_keys=True),
    ]
    source = getattr(inspect.getmodule(spec.check), "__file__", None)
    if source and source.endswith(".py") and Path(source).is_file():
        parts.append(Path(source).read_text(encoding="utf-8"))
    prompt = PROMPTS_DIR / f"{spec.name}.md"
    if prompt.is_file():
        parts.append(prompt.read_text(encoding="utf-8"))
    return hash_parts(parts)


def hash_parts(parts: list[str]) -> str:
    """The first 16 hex digits of the SHA-256 of `parts` (a short, stable version tag)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    return digest.hexdigest()[:16]
