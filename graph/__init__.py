"""Foreman's orchestrator graph.

Example:
    >>> from langgraph.checkpoint.memory import InMemorySaver
    >>> from graph import Context, build_graph
    >>> app = build_graph().compile(checkpointer=InMemorySaver())
    >>> # await app.ainvoke({"request": "..."}, {"configurable": {"thread_id": "1"}},
    >>> #                   context=Context(review_plan=False))
"""

from __future__ import annotations

from typing import Any

from graph.context import Context

__all__ = ["Context", "build_graph", "builder", "graph"]


def __getattr__(name: str) -> Any:
    # Lazy: the builder imports the workers, which import parts of this package.
    if name in ("build_graph", "builder", "graph"):
        import importlib

        return getattr(importlib.import_module("graph.orchestrator"), name)
    raise AttributeError(name)
