"""Assembles the Foreman graph: plan → (review) → dispatch → validate → … → synthesize."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from foreman.core.context import Context
from foreman.core.state import InputState, OutputState, State
from foreman.orchestration.human_review import (
    clarify,
    escalate,
    make_review_plan,
    route_after_escalation,
    route_after_review,
)
from foreman.orchestration.planner import make_plan, route_after_plan
from foreman.orchestration.scheduler import make_dispatch
from foreman.orchestration.synthesizer import synthesize
from foreman.orchestration.validator import route_after_validation, validate
from foreman.orchestration.waves import make_worker_node, route_after_dispatch
from foreman.workers.registry import WorkerRegistry, default_registry
from foreman.workers.router import build_workers_graph


def build_graph(
    registry: WorkerRegistry | None = None,
) -> StateGraph[State, Context, InputState, OutputState]:
    """Return the uncompiled Foreman graph for a worker registry (default: built-ins).

    Example:
        >>> from langgraph.checkpoint.memory import InMemorySaver
        >>> from graph import build_graph
        >>> app = build_graph().compile(checkpointer=InMemorySaver())
    """
    registry = registry or default_registry()
    builder = StateGraph(
        State, context_schema=Context, input_schema=InputState, output_schema=OutputState
    )
    # Provider errors are retried once, by the HTTP client (FOREMAN_HTTP_RETRIES); a node
    # retry on top would multiply how long a stalled provider holds the run.
    builder.add_node("plan", make_plan(registry))
    builder.add_node("review_plan", make_review_plan(registry))
    workers = build_workers_graph(registry)  # graph workers' attempts run through it
    builder.add_node("dispatch", make_dispatch(registry, workers))
    builder.add_node("worker", make_worker_node(registry, workers))
    builder.add_node("validate", validate)
    builder.add_node("clarify", clarify)
    builder.add_node("escalate", escalate)
    builder.add_node("synthesize", synthesize)
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", route_after_plan)
    builder.add_conditional_edges("review_plan", route_after_review)
    builder.add_conditional_edges("dispatch", route_after_dispatch, ["worker", "validate"])
    builder.add_edge("worker", "validate")
    builder.add_conditional_edges(
        "validate",
        route_after_validation,
        ["dispatch", "plan", "clarify", "escalate", "synthesize"],
    )
    builder.add_edge("clarify", "dispatch")
    builder.add_conditional_edges("escalate", route_after_escalation)
    builder.add_edge("synthesize", END)
    return builder


builder = build_graph()
# Deployed without a checkpointer: the LangGraph server (and `langgraph dev`) supply one.
graph = builder.compile(name="foreman")
