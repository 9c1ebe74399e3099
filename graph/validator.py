"""The validator node: once a dispatch round ends, read its verdicts and route the run.

Every result was already validated as it came in (`validation.py`); here the round is
judged as a whole: go on dispatching, revise the plan, ask a person, escalate, or answer.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Send

from foreman.core.context import Context
from foreman.core.schemas import Plan
from foreman.core.state import USABLE, NextStep, State, SubtaskRecord
from foreman.orchestration import quorum
from foreman.orchestration.audit import event
from foreman.orchestration.plan_validation import fingerprints
from foreman.orchestration.records import current_plan, current_records, open_questions


def validate(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Decide what follows a dispatch round, and record why."""
    plan = current_plan(state)
    records = current_records(state, fingerprints(plan))
    failed, questions = _open_issues(state, plan, records)
    reviews = [r for r in records.values() if r["status"] == "changes_requested"]
    fixes_left = state.get("fix_rounds", 0) < runtime.context.max_fix_rounds
    usable = {sid for sid, r in records.items() if r["status"] in USABLE}
    spare = quorum.spare(plan, {sid: r["status"] for sid, r in records.items()})
    runnable = [  # a member its group's quorum made spare is no input to wait for
        s.id
        for s in plan.subtasks
        if s.id not in records and all(d in usable or d in spare for d in s.inputs)
    ]
    update: dict[str, Any] = {}
    step: NextStep
    if state.get("aborted"):
        step = "synthesize"
    elif questions:
        step = "clarify"
    elif failed and state.get("replans", 0) < runtime.context.max_replans:
        step = "plan"  # the planner reads the failures from the records, as data
    elif reviews and fixes_left and not failed:
        step = "plan"  # the planner adds a fix round
    elif failed or reviews:
        step = "escalate"
    elif runnable:
        step = "dispatch"
    else:
        step = "synthesize"
    update["next_step"] = step
    update["audit"] = [
        event(
            "validation",
            next_step=step,
            accepted=sorted(usable),
            failed=[r["id"] for r in failed],
            changes_requested=[r["id"] for r in reviews],
            questions=[r["id"] for r in questions],
        )
    ]
    return update


def _open_issues(
    state: State, plan: Plan, records: dict[str, SubtaskRecord]
) -> tuple[list[SubtaskRecord], list[SubtaskRecord]]:
    """Failed records and unanswered questions, in that order.

    Members of groups that met their quorum without them are left out: they are not
    needed, so there is nothing to revise, escalate or ask a person about.
    """
    spare = quorum.spare(plan, {sid: r["status"] for sid, r in records.items()})
    failed = [r for r in records.values() if r["status"] == "failed" and r["id"] not in spare]
    return failed, [r for r in open_questions(state, records) if r["id"] not in spare]


def route_after_validation(state: State) -> list[Send] | NextStep:
    """Follow the validator's decision; questions and escalations fan out, one per subtask."""
    step: NextStep = state.get("next_step", "synthesize")
    if step not in ("clarify", "escalate"):
        return step
    plan = current_plan(state)
    records = current_records(state, fingerprints(plan))
    failed, questions = _open_issues(state, plan, records)
    if step == "clarify":
        answered = state.get("answers") or {}
        return [
            Send(
                "clarify",
                {
                    "subtask": r["id"],
                    "question": r["question"] or "",
                    "answered": answered.get(r["id"], 0),
                },
            )
            for r in questions
        ]
    escalated = {r["id"] for r in failed}
    return [
        Send(
            "escalate",
            {
                "subtask": r["id"],
                "error": r["error"] or "",
                "worker": r["worker"],
                "fingerprint": r["fingerprint"],
                "plan_version": r["plan_version"],
                "attempts": [
                    {k: a.get(k) for k in ("n", "worker", "model", "verdict", "error")}
                    for a in r["attempts"]
                ],
            },
        )
        for r in records.values()
        if r["status"] == "changes_requested" or r["id"] in escalated
    ]
