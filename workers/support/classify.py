"""Classify worker: reads a customer's message and says what it is about."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.graph.state import CompiledStateGraph
from pydantic import Field

from foreman.core.context import Context
from foreman.core.schemas import WorkerStatus
from foreman.workers.base import WorkerInput, one_call_worker
from foreman.workers.spec import WorkerSpec

NAME = "classify"
Intent = Literal[
    "return_refund",
    "damaged_item",
    "late_delivery",
    "order_status",
    "cancel_order",
    "address_change",
    "billing",
    "account_privacy",
    "complaint",
    "other",
]


class Classification(WorkerStatus):
    """What the customer wants, and the identifiers they gave."""

    intent: Intent = Field(default="other", description="The main request.")
    secondary_intents: list[Intent] = Field(
        default_factory=list, description="Other requests in the same message."
    )
    urgency: Literal["low", "normal", "high"] = Field(default="normal")
    sentiment: Literal["positive", "neutral", "negative", "angry"] = Field(default="neutral")
    emails: list[str] = Field(
        default_factory=list, description="Email addresses written in the message, verbatim."
    )
    order_ids: list[str] = Field(
        default_factory=list, description="Order numbers written in the message, verbatim."
    )
    summary: str = Field(default="", description="The request in one neutral sentence.")


def _message(inp: WorkerInput) -> str:
    return f"{inp.subtask.objective}\n{inp.clarification or ''}"


def check_classification(output: dict[str, Any], inp: WorkerInput, ctx: Context) -> list[str]:
    """Classifier rules: identifiers are copied from the message, never invented."""
    text = _message(inp).lower()
    problems = [
        f"{kind} {value!r} does not appear in the message"
        for kind, values in (
            ("email", output.get("emails", [])),
            ("order", output.get("order_ids", [])),
        )
        for value in values
        if value.lower() not in text
    ]
    if not str(output.get("summary", "")).strip():
        problems.append("the summary is empty")
    return problems


def render_classification(output: dict[str, Any]) -> str:
    """One line per field."""
    keys = ", ".join(output.get("emails", []) + output.get("order_ids", [])) or "none given"
    also = ", ".join(output.get("secondary_intents", []))
    return (
        f"- intent: {output.get('intent')}{f' (also: {also})' if also else ''}\n"
        f"- urgency: {output.get('urgency')}, sentiment: {output.get('sentiment')}\n"
        f"- identifiers: {keys}\n- summary: {output.get('summary', '')}"
    )


def build() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the classify worker subgraph."""
    return one_call_worker(NAME, Classification, node="classify")


def spec() -> WorkerSpec:
    """The `classify` worker as the planner sees it and the validator checks it."""
    return WorkerSpec(
        name="classify",
        uses_tools=False,
        capability="customer service",
        description="triages a customer's message (put the message verbatim in the "
        "objective): intent, urgency, and the order numbers and emails it contains",
        graph=build(),
        output_schema=Classification,
        check=check_classification,
        render=render_classification,
    )
