"""The graph workers as one graph: an attempt enters, its worker's subgraph runs it.

The orchestrator runs each attempt of a graph worker through this graph, `workers`. Its
entry routes on the attempt's `worker` to a node of that name, which invokes the worker's
subgraph. Being a subgraph of the orchestrator's nodes, it is what LangGraph Studio draws
inside them (`get_graph(xray=True)`: every worker's steps), what `get_subgraphs()` lists,
and what names each attempt's checkpoint namespace: `...|<worker>:<id>` holds the worker's
own state (its input, output, usage, model, and channels of its own such as research's
passages), read back with the worker's channels.

When that state is saved is `Context.worker_durability`: `exit` (the default) saves only an
attempt that fails or is cut off, `async` every step of every attempt. The saved state holds
the attempt's input, dependencies' results included, so `async` costs checkpoint bytes
(README, Durability). This graph's own state (the attempt and its worker's name) is saved only
when an attempt fails or is cut off: on success it would repeat the worker's.

Worker subgraphs are compiled with `checkpointer=False` (nothing of theirs outlives an
attempt); they are copied here with `checkpointer=None`, so that they save into the run's
checkpointer and LangGraph sees them at all (it skips `checkpointer=False`).

Tool workers (`WorkerSpec.tool`, plain functions) are not in this graph: the orchestrator
calls them directly. Invoking a graph per attempt costs milliseconds (README, Benchmarks),
noise next to a model call but most of what a database lookup takes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from foreman.core.context import Context
from foreman.workers.base import WorkerState
from foreman.workers.spec import WorkerSpec

NAME = "workers"
RESULT_KEYS = ("output", "usage", "model")


class AttemptState(WorkerState, total=False):
    """One worker attempt: the worker's `input`, and its `output`, `usage` and `model`."""

    worker: str
    """The registered name of the worker that runs the attempt."""


WorkersGraph = CompiledStateGraph[AttemptState, Context, AttemptState, AttemptState]


def route_to_worker(state: AttemptState) -> str:
    """The node of the attempt's worker."""
    return state["worker"]


def _worker_node(
    subgraph: CompiledStateGraph[Any, Any, Any, Any],
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """A node invoking a worker's subgraph, saved as `Context.worker_durability` says."""

    async def run_worker(state: AttemptState, runtime: Runtime[Context]) -> dict[str, Any]:
        out = await subgraph.ainvoke(
            {"input": state["input"]},
            context=runtime.context,
            durability=runtime.context.worker_durability,
        )
        return {k: out[k] for k in RESULT_KEYS if k in out}

    return run_worker


def graph_workers(specs: Mapping[str, WorkerSpec]) -> list[str]:
    """The names of the workers that are subgraphs (not tools), in registry order."""
    return [name for name, spec in specs.items() if spec.graph is not None]


def build_workers_graph(
    specs: Mapping[str, WorkerSpec],
) -> WorkersGraph | None:
    """Compile the graph running one attempt of any graph worker of `specs` (a registry).

    None when every worker is a tool.

    Example:
        >>> from foreman.workers.registry import default_registry
        >>> workers = build_workers_graph(default_registry())
        >>> [name for name, _ in workers.get_subgraphs()][:3]
        ['research', 'writer', 'llm']
    """
    names = graph_workers(specs)
    if not names:
        return None
    builder = StateGraph(AttemptState, context_schema=Context)
    for name in names:
        graph = specs[name].graph
        assert graph is not None
        builder.add_node(name, _worker_node(graph.copy(update={"checkpointer": None})))
        builder.add_edge(name, END)
    builder.add_conditional_edges(START, route_to_worker, names)
    return builder.compile(name=NAME)
