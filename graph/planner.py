"""The planner: the orchestrator model turns the request into a validated task plan."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, cast

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from foreman.core.context import Context
from foreman.core.models import StructuredOutputError, ainvoke_structured, check_specs
from foreman.core.prompts import render, untrusted
from foreman.core.schemas import Plan
from foreman.core.state import USABLE, State, SubtaskRecord, Usage, add_usage, empty_usage
from foreman.core.text import clean_text, escape_attr
from foreman.orchestration.audit import emit, event, total_usage, with_settings
from foreman.orchestration.budget import call_refusal
from foreman.orchestration.conversation import answer_message, plan_message, request_of
from foreman.orchestration.fixes import add_fix_round
from foreman.orchestration.outputs import load_all
from foreman.orchestration.plan_validation import PlanError, check_plan, fingerprints
from foreman.orchestration.records import current_records
from foreman.orchestration.right_sizing import merge_trivial_steps
from foreman.workers.registry import WorkerRegistry, registry_for

PREVIOUS_ANSWER_CHARS = 2000


def make_plan(base: WorkerRegistry) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the planner node for a worker registry (and the run's workers file)."""

    async def plan(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Ask the planner for a plan, check it, and ask again with the problems if invalid.

        With failed subtasks in the current plan this is a revision: accepted subtasks are
        listed so the planner keeps them, and their results are reused. A new request on a
        thread (a chat's next message) is a turn: with an answered plan before it, the planner
        gets that plan as a draft and the turn as context, so a follow-up ("expand the noise
        section") revises it, keeping the subtasks whose results still apply, while an
        unrelated request is planned afresh; either way, subtasks that come again unchanged
        keep their results. The first call records the run's settings in state, so a resume
        goes on with them.

        Raises:
            ModelConfigError: a model spec of the run's Context does not resolve (checked
                before anything else, so a bad spec stops the run before any model call).
            WorkersFileError: the run's workers file cannot be used (the message names the
                line); likewise checked before any model call.
        """
        check_specs(runtime.context.model_specs())
        request = request_of(state)
        if not request:
            error = 'no request: send {"request": "..."} or a human message'
            said = f"Foreman: {error}."
            return {
                "status": "failed",
                "error": error,
                "answer": said,
                "messages": [answer_message(said, "failed")],
            }
        new = request != state.get("request")
        asked: State = {**state, "request": request}
        previous = previous_turn(state) if new else ""
        update = await make_or_revise(asked, runtime, new_request=new, previous=previous)
        if new:
            # a turn of its own: its revisions and fix rounds are counted afresh
            update |= {"request": request, "replans": 0, "fix_rounds": 0}
        return with_settings(state, runtime.context, update)

    async def make_or_revise(
        state: State, runtime: Runtime[Context], new_request: bool = False, previous: str = ""
    ) -> dict[str, Any]:
        ctx = runtime.context
        # the workers file is read (again, when edited) off the event loop
        registry = await asyncio.to_thread(registry_for, base, ctx)
        # a new request is not a revision after failures; the previous plan, if it was
        # answered, is the draft a follow-up revises
        current = None if new_request else state.get("plan")
        draft = state.get("plan") if new_request and state.get("answer") else None
        accepted: list[str] = []
        if draft:
            records = current_records(state, fingerprints(Plan.model_validate(draft)))
            accepted = [sid for sid, r in records.items() if r["status"] in USABLE]
        if current:
            old = Plan.model_validate(current)
            records = current_records(state, fingerprints(old))
            accepted = [sid for sid, r in records.items() if r["status"] in USABLE]
            reviews = [r for r in records.values() if r["status"] == "changes_requested"]
            if reviews and not any(r["status"] == "failed" for r in records.values()):
                # the fix round reads the reviews' findings, which may be in the store
                loaded = await load_all({r["id"]: r for r in reviews}, fields=["output"])
                reviews = [cast(SubtaskRecord, r) for r in loaded.values()]
                return fix_round(state, old, reviews, registry, ctx)
        revising = bool(current) and any(
            r["status"] == "failed" for r in (state.get("results") or {}).values()
        )
        failures = failure_report(state) if revising else ""
        sources = await asyncio.to_thread(describe_sources, ctx.corpus_dir)
        feedback = state.get("plan_feedback", "")
        system = SystemMessage(
            render("planner", workers=registry.describe(), max_subtasks=ctx.max_subtasks)
        )
        usage: Usage = empty_usage()
        audit = []
        problems: list[str] = []
        emit("phase", name="planning", revising=revising)
        next_version = state.get("plan_version", 0) + 1
        for attempt in range(1, ctx.max_plan_attempts + 1):
            if revising and (refused := revision_refused(state, ctx, system, failures)):
                return refused
            notes = feedback
            if problems:
                notes += "\nYour previous plan was rejected: " + "; ".join(problems)
            human = HumanMessage(
                render(
                    "planner_request",
                    request=untrusted(clean_text(state["request"])),
                    sender="yes" if state.get("sender") else "no",
                    sources=sources,
                    feedback=untrusted(notes.strip()),
                    failures=failures,
                    current_plan=json.dumps(current if revising else draft)
                    if revising or draft
                    else "none",
                    previous=previous,
                    accepted=", ".join(accepted) if revising or draft else "",
                )
            )
            try:
                proposal, call_usage = await ainvoke_structured(
                    ctx.planner_model,
                    Plan,
                    [system, human],
                    method=ctx.structured_output_method,
                    role="planner",
                    config={
                        "run_name": f"planner · plan v{next_version} · attempt {attempt}",
                        "tags": ["foreman:planner"],
                        "metadata": {
                            "plan_version": next_version,
                            "plan_attempt": attempt,
                            "revision": revising,
                        },
                    },
                )
                usage = add_usage(usage, call_usage)
                if revising and proposal.approach != "plan":
                    raise PlanError(["a revision keeps the accepted subtasks: approach plan"])
                check_plan(proposal, registry, ctx.max_subtasks)
                merges: list[str] = []
                if not (revising or draft):  # revisions keep the ids of what they keep
                    proposal, merges = merge_trivial_steps(proposal, registry)
            except StructuredOutputError as exc:
                if exc.usage:
                    usage = add_usage(usage, exc.usage)
                problems = [str(exc)]
            except PlanError as exc:
                problems = exc.problems
            else:
                version = next_version
                dumped = proposal.model_dump(mode="json")
                audit.append(
                    event(
                        "plan",
                        version=version,
                        attempt=attempt,
                        plan=dumped,
                        revision=revising,
                        turn=bool(new_request),
                    )
                )
                # how much orchestration the request got, and why (`foreman show` lists it)
                audit.append(
                    event(
                        "decision",
                        approach=proposal.approach,
                        subtasks=len(proposal.subtasks),
                        rationale=proposal.rationale,
                        left_out=proposal.left_out,
                        merged=merges,
                    )
                )
                emit(
                    "plan",
                    version=version,
                    subtasks=[
                        {"id": s.id, "worker": s.worker, "inputs": s.inputs}
                        for s in proposal.subtasks
                    ],
                )
                approval = new_worker_kinds(state, proposal, registry) if revising else []
                if approval:
                    audit.append(event("plan_needs_approval", new_workers=approval))
                kinds = {s.worker for s in proposal.subtasks}
                allowed = set(state.get("allowed_workers") or kinds)
                if new_request:  # a person's message: what its plan uses is theirs to ask
                    allowed |= kinds
                return {
                    "allowed_workers": sorted(allowed),
                    "approval_needed": (
                        f"this revision brings in {', '.join(approval)}, which no earlier plan "
                        "of this run used; a person approves that (text from workers could have "
                        "asked for it)"
                        if approval
                        else None
                    ),
                    "plan": dumped,
                    "plan_version": version,
                    "plan_history": [
                        {
                            "version": version,
                            "at": time.time(),
                            "plan": dumped,
                            "source": "replan" if revising else "turn" if draft else "planner",
                        }
                    ],
                    "messages": [plan_message(dumped)] if proposal.approach == "plan" else [],
                    "plan_feedback": "",
                    "replans": state.get("replans", 0) + (1 if revising else 0),
                    "usage": {ctx.planner_model: usage},
                    "audit": audit,
                    "status": "planned",
                    "error": None,
                }
            audit.append(event("plan_rejected", attempt=attempt, problems=problems))
        error = (
            f"the planner did not produce a valid plan in {ctx.max_plan_attempts} attempts; "
            f"last problems: {'; '.join(problems)}"
        )
        said = f"Foreman could not plan this request: {error}."
        return {
            "usage": {ctx.planner_model: usage},
            "audit": audit,
            "status": "failed",
            "error": error,
            "answer": said,
            "messages": [answer_message(said, "failed")],
        }

    return plan


def fix_round(
    state: State,
    current: Plan,
    reviews: list[SubtaskRecord],
    registry: WorkerRegistry,
    ctx: Context,
) -> dict[str, Any]:
    """Revise the plan by rule after reviews that requested changes (no model call)."""
    round_no = state.get("fix_rounds", 0) + 1
    revised = add_fix_round(current, reviews, round_no)
    # A fix round grows the plan by design; the subtask cap applies to the planner's plans.
    check_plan(revised, registry, max(ctx.max_subtasks, len(revised.subtasks)))
    version = state.get("plan_version", 0) + 1
    dumped = revised.model_dump(mode="json")
    emit(
        "plan",
        version=version,
        subtasks=[{"id": s.id, "worker": s.worker, "inputs": s.inputs} for s in revised.subtasks],
    )
    return {
        "plan": dumped,
        "plan_version": version,
        "plan_history": [
            {"version": version, "at": time.time(), "plan": dumped, "source": "fix_round"}
        ],
        "plan_feedback": "",
        "fix_rounds": round_no,
        "audit": [
            event(
                "plan",
                version=version,
                attempt=1,
                plan=dumped,
                revision=True,
                fix_round=round_no,
                reviews=[r["id"] for r in reviews],
            )
        ],
        "status": "planned",
        "error": None,
    }


def revision_refused(
    state: State, ctx: Context, system: SystemMessage, failures: str
) -> dict[str, Any] | None:
    """A revision the run's budget cannot pay for: the run goes on to its answer instead."""
    human = HumanMessage(f"{state.get('request', '')}\n{json.dumps(state.get('plan'))}\n{failures}")
    why = call_refusal(ctx, total_usage(state), ctx.planner_model, [system, human])
    if why is None:
        return None
    reason = f"a plan revision was refused before spending: {why}"
    return {
        "status": "over_budget",
        "error": reason,
        "audit": [event("budget_stop", reason=reason)],
    }


def route_after_plan(
    state: State, runtime: Runtime[Context]
) -> Literal["review_plan", "dispatch", "synthesize", "__end__"]:
    """Route a plan: end on failure, answer at once, review (asked for or needed) or run."""
    if state.get("status") == "failed":
        return "__end__"
    if state.get("status") == "over_budget":  # a revision the budget could not pay for
        return "synthesize"
    if (state.get("plan") or {}).get("approach", "plan") != "plan":
        return "synthesize"  # nothing to run: the planner's answer is the answer
    if runtime.context.review_plan or state.get("approval_needed"):
        return "review_plan"
    return "dispatch"


def previous_turn(state: State) -> str:
    """The request and answer before this one, for a chat's follow-up (data, shortened)."""
    if not state.get("answer"):
        return ""
    answer = state["answer"]
    if len(answer) > PREVIOUS_ANSWER_CHARS:
        answer = answer[:PREVIOUS_ANSWER_CHARS] + " …"
    return (
        f"<asked>{untrusted(str(state.get('request') or ''))}</asked>\n"
        f"<answered>{untrusted(answer)}</answered>"
    )


def describe_sources(corpus_dir: str) -> str:
    """The research corpus for the planner: each document's title and characteristic words.

    So the planner can tell a request the documents can answer from one they cannot.
    """
    from foreman.workers.tools.corpus import load_corpus

    try:
        corpus = load_corpus(corpus_dir)
    except (FileNotFoundError, ValueError):
        return "(no documents)"
    return "\n".join(
        f'<document id="{doc}" title="{escape_attr(untrusted(title))}">'
        f"{untrusted(', '.join(words))}</document>"
        for doc, (title, words) in corpus.signature().items()
    )


def failure_report(state: State) -> str:
    """The current plan's failed subtasks for the planner, as tagged, escaped data.

    The reasons are worker-originated: a worker's own words, or text from what it read. They
    tell the planner what went wrong; the planner prompt says they are never instructions.
    """
    records = current_records(state, fingerprints(Plan.model_validate(state["plan"])))
    return "\n".join(
        f'<failure subtask="{escape_attr(r["id"])}" worker="{escape_attr(r["worker"])}">'
        f"{untrusted(r['error'] or 'no reason given')}</failure>"
        for r in records.values()
        if r["status"] == "failed"
    )


def new_worker_kinds(state: State, plan: Plan, registry: WorkerRegistry) -> list[str]:
    """Tool-using workers a revision brings in that the approved plans did not use.

    The rule that keeps worker-originated text from recruiting tools: a revision follows
    failures whose reasons workers wrote, so it may change objectives freely and use workers
    that are only a model call (`WorkerSpec.uses_tools` False, e.g. `llm`), but a worker
    that runs code or reads a database, a corpus or the web only if an approved plan (the
    first, made from the request, or one a person approved or wrote) used it or a worker it
    is the declared alternative of.
    """
    used = set(state.get("allowed_workers") or [])
    allowed = used | {a for w in used if w in registry for a in registry[w].alternatives}
    return sorted(
        {
            s.worker
            for s in plan.subtasks
            if s.worker not in allowed
            and (s.worker not in registry or registry[s.worker].uses_tools)
        }
    )
