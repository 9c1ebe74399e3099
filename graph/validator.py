"""The validator: checks each worker result, and routes the run once a dispatch round ends."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from langgraph.types import Send
from pydantic import ValidationError

from foreman.core.context import Context
from foreman.core.models import ainvoke_structured
from foreman.core.prompts import render, untrusted
from foreman.core.schemas import Plan, Verdict
from foreman.core.state import USABLE, NextStep, State, SubtaskRecord, Usage
from foreman.orchestration.audit import event
from foreman.orchestration.plan_validation import fingerprints
from foreman.workers.base import WorkerInput
from foreman.workers.registry import WorkerSpec

AttemptVerdict = Literal["accept", "retry", "substitute", "give_up", "clarify", "not_found"]


async def check_output(
    spec: WorkerSpec, output: dict[str, Any], inp: WorkerInput, ctx: Context
) -> tuple[list[str], dict[str, Usage]]:
    """Problems with one worker output: status, schema, worker rules, then the judge.

    Returns the problems (empty means acceptable) and the judge's usage by model.
    """
    status = output.get("status", "done")
    if status == "not_found":  # an honest negative: nothing to check, nothing invented
        return [], {}
    if status == "failed":
        return [f"the worker reported failure: {output.get('error') or 'no reason given'}"], {}
    if status == "needs_clarification":
        return [f"the worker needs clarification: {output.get('question') or '?'}"], {}
    try:
        spec.output_schema.model_validate(output)
    except ValidationError as exc:
        return [f"output does not match {spec.output_schema.__name__}: {exc}"], {}
    # Worker rules may read the corpus from disk: keep that off the event loop.
    problems = await asyncio.to_thread(spec.check, output, inp, ctx)
    if problems or not ctx.judge:
        return problems, {}
    sub = inp.subtask
    verdict, usage = await ainvoke_structured(
        ctx.validator_model,
        Verdict,
        [
            SystemMessage(render("judge")),
            HumanMessage(
                render(
                    "judge_request",
                    objective=untrusted(sub.objective),
                    context=untrusted(sub.context),
                    criteria="; ".join(untrusted(c) for c in sub.acceptance_criteria),
                    output=untrusted(spec.render(output)),
                )
            ),
        ],
        method=ctx.structured_output_method,
        role="judge",
    )
    judged = [] if verdict.accept else [f"judge: {verdict.feedback or 'criteria not met'}"]
    return judged, {ctx.validator_model: usage}


def decide(
    output: dict[str, Any] | None,
    problems: list[str],
    attempts_on_worker: int,
    alternatives_left: bool,
    ctx: Context,
) -> AttemptVerdict:
    """Route one attempt: accept, retry with feedback, substitute a worker, ask, or give up.

    A worker that found nothing on its objective says so (`not_found`): that is kept as the
    subtask's outcome, not retried.
    """
    if not problems:
        return "not_found" if (output or {}).get("status") == "not_found" else "accept"
    if output is not None and output.get("status") == "needs_clarification":
        return "clarify"
    if attempts_on_worker < ctx.max_attempts:
        return "retry"
    return "substitute" if alternatives_left else "give_up"


def current_plan(state: State) -> Plan:
    """The plan the run is on."""
    return Plan.model_validate(state["plan"])


def current_records(state: State, prints: dict[str, str]) -> dict[str, SubtaskRecord]:
    """Records that belong to the current plan (same subtask spec and upstream)."""
    return {
        sid: rec
        for sid, rec in (state.get("results") or {}).items()
        if prints.get(sid) == rec["fingerprint"]
    }


def has_new_answer(state: State, rec: SubtaskRecord) -> bool:
    """Whether a person answered the record's question after its attempts ran.

    Answers are counted, not compared: the same words given again are still an answer.
    """
    if "answers" in rec:
        return (state.get("answers") or {}).get(rec["id"], 0) > rec["answers"]
    answer = (state.get("clarifications") or {}).get(rec["id"])  # a record from before counts
    return answer is not None and answer != rec.get("clarification")


def open_questions(state: State, records: dict[str, SubtaskRecord]) -> list[SubtaskRecord]:
    """Records whose worker asked a question nobody has answered yet."""
    return [
        r
        for r in records.values()
        if r["status"] == "needs_clarification" and not has_new_answer(state, r)
    ]


def validate(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Decide what follows a dispatch round, and record why."""
    plan = current_plan(state)
    records = current_records(state, fingerprints(plan))
    questions = open_questions(state, records)
    failed = [r for r in records.values() if r["status"] == "failed"]
    reviews = [r for r in records.values() if r["status"] == "changes_requested"]
    fixes_left = state.get("fix_rounds", 0) < runtime.context.max_fix_rounds
    usable = {sid for sid, r in records.items() if r["status"] in USABLE}
    runnable = [
        s.id for s in plan.subtasks if s.id not in records and all(d in usable for d in s.inputs)
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


def route_after_validation(state: State) -> list[Send] | NextStep:
    """Follow the validator's decision; questions and escalations fan out, one per subtask."""
    step: NextStep = state.get("next_step", "synthesize")
    if step not in ("clarify", "escalate"):
        return step
    records = current_records(state, fingerprints(current_plan(state)))
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
            for r in open_questions(state, records)
        ]
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
        if r["status"] in ("failed", "changes_requested")
    ]
