"""Validating one worker result: status, schema, the worker's rules, the judge; the verdict.

Each attempt is checked as soon as it returns (`execution.py` calls `check_output`, then
`decide`), so a retry or a substitute starts at once, whatever else is running.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import ValidationError

from foreman.core.context import Context
from foreman.core.models import ainvoke_structured
from foreman.core.prompts import render, untrusted
from foreman.core.schemas import Verdict
from foreman.core.state import Usage
from foreman.workers.base import WorkerInput
from foreman.workers.registry import WorkerSpec

AttemptVerdict = Literal[
    "accept", "retry", "substitute", "give_up", "clarify", "not_found", "cancelled"
]
"""`cancelled`: a hedged attempt that lost the race (or the attempt it hedged)."""


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
        config={
            "run_name": f"{sub.id} · judge · attempt {inp.attempt}",
            "tags": ["foreman:judge"],
            "metadata": {"subtask_id": sub.id, "worker": spec.name, "attempt": inp.attempt},
        },
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
