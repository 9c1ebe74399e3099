"""Human-in-the-loop nodes: plan review, worker questions, escalations.

Each node calls `interrupt()` and validates the resume value; a value of the wrong shape
does not fail the run, it interrupts again with the error, so the thread stays resumable.
Side effects (state writes) happen only after a valid answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, NotRequired, TypedDict

from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import TypeAdapter, ValidationError

from foreman.core.context import Context
from foreman.core.models import ModelConfigError, load_chat_model
from foreman.core.schemas import (
    AbortRun,
    ClarificationAnswer,
    EditPlan,
    Escalation,
    Plan,
    PlanReview,
    RejectPlan,
    RetrySubtask,
    SkipSubtask,
)
from foreman.core.state import State, SubtaskRecord, empty_usage
from foreman.core.text import without_nul
from foreman.orchestration.audit import event
from foreman.orchestration.hitl import AnswerError, from_ui, offer
from foreman.orchestration.plan_validation import PlanError, check_plan
from foreman.workers.registry import WorkerRegistry, registry_for

PLAN_REVIEW = TypeAdapter(PlanReview)
ESCALATION = TypeAdapter(Escalation)
CLARIFICATION = TypeAdapter(ClarificationAnswer | str)

PLAN_REVIEW_HELP = (
    'approve: {"action": "approve"}; edit: {"action": "edit", "plan": {...}}; '
    'reject: {"action": "reject", "feedback": "..."}'
)
ESCALATION_HELP = (
    'retry: {"action": "retry", "model": "PROVIDER:MODEL" (optional), "note": "..." '
    '(optional)}; skip: {"action": "skip"}; supply the result: {"action": "supply", '
    '"result": "..."}; abort the run: {"action": "abort", "reason": "..."}'
)


def explain(exc: ValidationError) -> str:
    """A one-line, person-readable account of a validation error."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        parts.append(f"{where + ': ' if where else ''}{err['msg']}")
    return "; ".join(dict.fromkeys(parts))


def understood(answer: Any, parse: Callable[[Any], Any], expected: str) -> tuple[Any, str | None]:
    """Parse a person's answer: `(decision, None)`, or `(None, why it was not understood)`."""
    try:
        return parse(without_nul(answer)), None
    except ValidationError as exc:
        return None, f"your answer was not understood ({explain(exc)}); expected {expected}"
    except PlanError as exc:
        return None, f"the edited plan is invalid: {exc}"
    except AnswerError as exc:
        return None, str(exc)
    except RecursionError:
        return None, f"your answer is nested too deeply to read; expected {expected}"


def ask(payload: dict[str, Any], parse: Callable[[Any], Any]) -> Any:
    """Interrupt until the person's answer parses; each bad answer is shown back with why.

    For small answers only (questions, escalations): on resume the node replays every
    earlier answer through `parse` again. The question is offered in the UI schemas too, and
    a UI's answer is read as Foreman's payload (`graph.hitl`).
    """
    error: str | None = None
    while True:
        decision, error = understood(
            interrupt(offer({**payload, "error": error})),
            lambda answer: parse(from_ui(payload["kind"], answer)),
            payload["expected"],
        )
        if error is None:
            return decision


def make_review_plan(base: WorkerRegistry) -> Callable[..., dict[str, Any]]:
    """Build the plan-review node for a worker registry."""

    def review_plan(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Pause for a person to approve, edit or reject the plan.

        One question per run of the node: an answer that is not understood ends the node
        with the reason, and the node runs again to ask anew. So a rejected edit (which may
        be a large plan) is checked once, not again on every later resume.
        """

        def parse(answer: Any) -> Any:
            decision = PLAN_REVIEW.validate_python(from_ui("plan_review", answer))
            if isinstance(decision, EditPlan):
                registry = registry_for(base, runtime.context)
                check_plan(decision.plan, registry, runtime.context.max_subtasks)
            return decision

        answer = interrupt(
            offer(
                {
                    "kind": "plan_review",
                    "plan": state["plan"],
                    "version": state.get("plan_version"),
                    "expected": PLAN_REVIEW_HELP,
                    "error": state.get("review_error"),
                    "reason": state.get("approval_needed"),
                }
            )
        )
        decision, error = understood(answer, parse, PLAN_REVIEW_HELP)
        if error is not None:
            return {
                "review_error": error,
                "next_step": "review_plan",
                "audit": [event("plan_review_not_understood", error=error)],
            }
        audit = [event("plan_review", action=decision.action)]
        approved = set(state.get("allowed_workers") or [])
        if not isinstance(decision, RejectPlan):  # what a person approves or writes
            plan = (
                decision.plan
                if isinstance(decision, EditPlan)
                else Plan.model_validate(state["plan"])
            )
            approved |= {s.worker for s in plan.subtasks}
        if isinstance(decision, EditPlan):
            version = state.get("plan_version", 1) + 1
            dumped = decision.plan.model_dump(mode="json")
            return {
                "plan": dumped,
                "plan_version": version,
                "review_error": None,
                "approval_needed": None,
                "allowed_workers": sorted(approved),
                "next_step": "dispatch",
                "plan_history": [
                    {"version": version, "at": time.time(), "plan": dumped, "source": "human_edit"}
                ],
                "audit": audit,
            }
        if isinstance(decision, RejectPlan):
            return {
                "plan_feedback": decision.feedback,
                "review_error": None,
                "approval_needed": None,
                "next_step": "plan",
                "audit": audit,
            }
        return {
            "next_step": "dispatch",
            "review_error": None,
            "approval_needed": None,
            "allowed_workers": sorted(approved),
            "audit": audit,
        }

    return review_plan


def route_after_review(state: State) -> Literal["plan", "dispatch", "review_plan"]:
    """Replan after a rejection, ask again after an answer not understood, else dispatch."""
    step = state.get("next_step")
    if step == "plan":
        return "plan"
    return "review_plan" if step == "review_plan" else "dispatch"


class QuestionInput(TypedDict):
    """Private input of one clarification branch."""

    subtask: str
    question: str
    answered: NotRequired[int]
    """How many answers the subtask's questions have had so far."""


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
        "answers": {state["subtask"]: state.get("answered", 0) + 1},
        "audit": [event("clarification", state["subtask"], answer=text)],
    }


class EscalationInput(TypedDict):
    """Private input of one escalation branch."""

    subtask: str
    worker: str
    error: str
    fingerprint: str
    plan_version: int
    attempts: NotRequired[list[dict[str, Any]]]
    """What each attempt was (worker, model, verdict, error), for the person to see."""


def parse_escalation(answer: Any) -> Any:
    """An escalation answer; a retry's model must be one Foreman can call."""
    decision = ESCALATION.validate_python(answer)
    if isinstance(decision, RetrySubtask) and decision.model:
        try:
            load_chat_model(decision.model)
        except ModelConfigError as exc:
            raise AnswerError(f"the model for the retry cannot be used: {exc}") from exc
    return decision


def escalate(state: EscalationInput, runtime: Runtime[Context]) -> dict[str, Any]:
    """Retries and replans are spent: a person retries, skips or supplies the subtask, or aborts.

    A retry runs the subtask afresh (with a note for the worker, and another model if
    given); the failed attempts stay in the audit trail.
    """
    decision = ask(
        {
            "kind": "escalation",
            "subtask": state["subtask"],
            "worker": state["worker"],
            "failure": state["error"] or "no reason was given",
            "attempts": state.get("attempts", []),
            "expected": ESCALATION_HELP,
        },
        parse_escalation,
    )
    detail: dict[str, Any] = {"action": decision.action}
    if isinstance(decision, RetrySubtask):
        detail |= {"model": decision.model, "note": decision.note, "failed": state["error"]}
        detail["failed_attempts"] = state.get("attempts", [])
    audit = [event("escalation", state["subtask"], **detail)]
    if isinstance(decision, AbortRun):
        return {
            "aborted": [decision.reason or f"aborted at subtask {state['subtask']}"],
            "audit": audit,
        }
    return {"results": {state["subtask"]: _human_record(state, decision)}, "audit": audit}


def _human_record(state: EscalationInput, decision: Any) -> SubtaskRecord:
    """The record a person's skip, supplied result or retry leaves for a subtask."""
    if isinstance(decision, RetrySubtask):
        return {
            "id": state["subtask"],
            "fingerprint": state["fingerprint"],
            "worker": state["worker"],
            "status": "rerun",
            "text": "", "output": None, "question": None, "clarification": None,
            "error": None, "attempts": [], "usage": empty_usage(),
            "plan_version": state["plan_version"],
            "retry": {"model": decision.model, "note": decision.note},
        }  # fmt: skip
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
