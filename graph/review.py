"""Human-in-the-loop nodes: plan review, worker questions, escalations.

Each node calls `interrupt()` and validates the resume value; a value of the wrong shape
does not fail the run, it interrupts again with the error, so the thread stays resumable.
Side effects (state writes) happen only after a valid answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, TypedDict

from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import TypeAdapter, ValidationError

from graph.audit import event
from graph.context import Context
from graph.plan_validation import PlanError, check_plan
from graph.schemas import (
    AbortRun,
    ClarificationAnswer,
    EditPlan,
    Escalation,
    PlanReview,
    RejectPlan,
    SkipSubtask,
)
from graph.state import State, SubtaskRecord, empty_usage
from workers.registry import WorkerRegistry

PLAN_REVIEW = TypeAdapter(PlanReview)
ESCALATION = TypeAdapter(Escalation)
CLARIFICATION = TypeAdapter(ClarificationAnswer | str)

PLAN_REVIEW_HELP = (
    'approve: {"action": "approve"}; edit: {"action": "edit", "plan": {...}}; '
    'reject: {"action": "reject", "feedback": "..."}'
)
ESCALATION_HELP = (
    'skip: {"action": "skip"}; supply the result: {"action": "supply", "result": "..."}; '
    'abort the run: {"action": "abort", "reason": "..."}'
)


def explain(exc: ValidationError) -> str:
    """A one-line, person-readable account of a validation error."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        parts.append(f"{where + ': ' if where else ''}{err['msg']}")
    return "; ".join(dict.fromkeys(parts))


def ask(payload: dict[str, Any], parse: Callable[[Any], Any]) -> Any:
    """Interrupt until the person's answer parses; each bad answer is shown back with why."""
    error: str | None = None
    while True:
        answer = interrupt({**payload, "error": error})
        try:
            return parse(answer)
        except ValidationError as exc:
            error = (
                f"your answer was not understood ({explain(exc)}); expected {payload['expected']}"
            )
        except PlanError as exc:
            error = f"the edited plan is invalid: {exc}"


def make_review_plan(registry: WorkerRegistry) -> Callable[..., dict[str, Any]]:
    """Build the plan-review node for a worker registry."""

    def review_plan(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Pause for a person to approve, edit or reject the plan."""

        def parse(answer: Any) -> Any:
            decision = PLAN_REVIEW.validate_python(answer)
            if isinstance(decision, EditPlan):
                check_plan(decision.plan, registry, runtime.context.max_subtasks)
            return decision

        decision = ask(
            {
                "kind": "plan_review",
                "plan": state["plan"],
                "version": state.get("plan_version"),
                "expected": PLAN_REVIEW_HELP,
            },
            parse,
        )
        audit = [event("plan_review", action=decision.action)]
        if isinstance(decision, EditPlan):
            version = state.get("plan_version", 1) + 1
            dumped = decision.plan.model_dump(mode="json")
            return {
                "plan": dumped,
                "plan_version": version,
                "next_step": "dispatch",
                "plan_history": [
                    {"version": version, "at": time.time(), "plan": dumped, "source": "human_edit"}
                ],
                "audit": audit,
            }
        if isinstance(decision, RejectPlan):
            return {"plan_feedback": decision.feedback, "next_step": "plan", "audit": audit}
        return {"next_step": "dispatch", "audit": audit}

    return review_plan


def route_after_review(state: State) -> Literal["plan", "dispatch"]:
    """Back to the planner after a rejection, otherwise run the plan."""
    return "plan" if state.get("next_step") == "plan" else "dispatch"


class QuestionInput(TypedDict):
    """Private input of one clarification branch."""

    subtask: str
    question: str


def clarify(state: QuestionInput) -> dict[str, Any]:
    """Ask a person the question a worker raised; the answer reruns that subtask."""
    answer = ask(
        {
            "kind": "clarification",
            "subtask": state["subtask"],
            "question": state["question"],
            "expected": '{"answer": "..."} or a plain string',
        },
        CLARIFICATION.validate_python,
    )
    text = answer.answer if isinstance(answer, ClarificationAnswer) else answer
    if not text.strip():
        text = "(no answer)"
    return {
        "clarifications": {state["subtask"]: text},
        "audit": [event("clarification", state["subtask"], answer=text)],
    }


class EscalationInput(TypedDict):
    """Private input of one escalation branch."""

    subtask: str
    worker: str
    error: str
    fingerprint: str
    plan_version: int


def escalate(state: EscalationInput, runtime: Runtime[Context]) -> dict[str, Any]:
    """Retries and replans are spent: a person skips the subtask, supplies it, or aborts."""
    decision = ask(
        {
            "kind": "escalation",
            "subtask": state["subtask"],
            "worker": state["worker"],
            "failure": state["error"],
            "expected": ESCALATION_HELP,
        },
        ESCALATION.validate_python,
    )
    audit = [event("escalation", state["subtask"], action=decision.action)]
    if isinstance(decision, AbortRun):
        return {
            "aborted": [decision.reason or f"aborted at subtask {state['subtask']}"],
            "audit": audit,
        }
    return {"results": {state["subtask"]: _human_record(state, decision)}, "audit": audit}


def _human_record(state: EscalationInput, decision: Any) -> SubtaskRecord:
    """The record a person's skip or supplied result leaves for a subtask."""
    skipped = isinstance(decision, SkipSubtask)
    return {
        "id": state["subtask"],
        "fingerprint": state["fingerprint"],
        "worker": "human",
        "status": "skipped" if skipped else "supplied",
        "text": "" if skipped else decision.result,
        "output": None if skipped else {"text": decision.result},
        "question": None,
        "clarification": None,
        "error": state["error"] if skipped else None,
        "attempts": [],
        "usage": empty_usage(),
        "plan_version": state["plan_version"],
    }


def route_after_escalation(state: State) -> Literal["synthesize", "dispatch"]:
    """Stop at an abort; otherwise continue with what the people decided."""
    return "synthesize" if state.get("aborted") else "dispatch"
