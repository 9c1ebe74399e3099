"""Foreman: an orchestrator-worker multi-agent application on LangGraph.

The front door for Python users; a `graph.py` of your own cannot shadow it.

Example:
    >>> from langgraph.checkpoint.memory import InMemorySaver
    >>> from foreman import Context, build_graph
    >>> app = build_graph().compile(checkpointer=InMemorySaver())
    >>> # await app.ainvoke({"request": "..."}, {"configurable": {"thread_id": "1"}},
    >>> #                   context=Context(review_plan=False))

`graph` is the compiled graph without a checkpointer (what `langgraph.json` serves);
`builder` is its uncompiled `StateGraph`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from foreman.core.context import Context
    from foreman.orchestration.orchestrator import build_graph, builder, graph

__all__ = ["Context", "build_graph", "builder", "graph"]

# Imported on first use: the `foreman` command imports this package and must start fast.
_HOMES = {
    "Context": "foreman.core.context",
    "build_graph": "foreman.orchestration.orchestrator",
    "builder": "foreman.orchestration.orchestrator",
    "graph": "foreman.orchestration.orchestrator",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'foreman' has no attribute {name!r}")
