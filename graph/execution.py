"""Runs one subtask: attempts, validation after each, retry, the cascade, hedging, budgets.

A subtask's attempts climb its worker's model ladder on failure (`cascade.py`), may be
hedged by a second attempt when late (`Context.hedge_percentile`), end with a substitute
worker when the worker keeps failing, and are refused before spending what the run's or
the subtask's budget cannot pay (`budget.py`). `attempts.py` runs each one.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, NotRequired, TypedDict

from foreman.core.context import Context
from foreman.core.redact import redact
from foreman.core.schemas import Subtask
from foreman.core.state import AttemptRecord, SubtaskRecord, empty_usage, sum_usage
from foreman.orchestration import history, outputs, result_cache
from foreman.orchestration.attempts import (
    ATTEMPT_DURABILITY,
    SUBTASK_TAG,
    Outcome,
    attempt_config,
    tracer_listens,
)
from foreman.orchestration.audit import emit
from foreman.orchestration.budget import Ledger, estimate
from foreman.orchestration.cascade import Try, ladder_of, on_rung, starting_rung
from foreman.orchestration.hedging import attempt_or_hedge, budgeted, extra_verdict
from foreman.orchestration.history import History
from foreman.orchestration.validation import AttemptVerdict, decide
from foreman.workers.base import DependencyResult, WorkerInput, request_prompt
from foreman.workers.registry import WorkerRegistry, registry_for
from foreman.workers.router import WorkersGraph

__all__ = [
    "ATTEMPT_DURABILITY",
    "SUBTASK_TAG",
    "Job",
    "attempt_config",
    "execute_subtask",
    "tracer_listens",
]


class Job(TypedDict):
    """The private input of one subtask dispatch (serialisable: it is a task argument)."""

    subtask: dict[str, Any]
    dependencies: dict[str, dict[str, Any]]
    clarification: str | None
    fingerprint: str
    plan_version: int
    answers: NotRequired[int]
    """How many answers the subtask's questions had when it was dispatched."""
    sender: NotRequired[str | None]
    """The run's verified requester (`State.sender`)."""
    retry: NotRequired[dict[str, str | None]]
    """A person's retry at an escalation: another `model`, a `note` for the worker."""
    ledger: NotRequired[str]
    """Waves mode: the id of the round's budget ledger (`budget.LEDGERS`)."""
    rerun: NotRequired[bool]
    """`foreman rerun` marked the subtask: run it again, not from the cross-run cache."""


async def execute_subtask(
    job: Job,
    registry: WorkerRegistry,
    workers: WorkersGraph | None,
    ctx: Context,
    ledger: Ledger | None = None,
) -> SubtaskRecord:
    """Run a subtask to a verdict: accepted, failed, over budget, or waiting for a person.

    Attempts of graph workers run through `workers` (`foreman.workers.router`), tools and
    declared workers directly. `ledger` is the dispatch round's (what the run has spent and
    reserved); without one the subtask is held to the subtask cap only.
    """
    sub = Subtask.model_validate(job["subtask"])
    if ctx.workers_file.strip():  # + the workers file's, read off the event loop
        registry = await asyncio.to_thread(registry_for, registry, ctx)
    loaded = await outputs.load_all(job["dependencies"], fields=outputs.DEPENDENCY_FIELDS)
    deps = {k: DependencyResult.model_validate(v) for k, v in loaded.items()}
    store = outputs.run_store()
    hist = await history.history_of(store)
    ledger = ledger or Ledger.of(
        dataclasses.replace(ctx, max_cost_usd=0, max_total_tokens=0), empty_usage()
    )
    worker = sub.worker
    tried = [worker]
    feedback: list[str] = []
    retry = job.get("retry") or {}
    if retry.get("model"):  # a person chose another model for this subtask at an escalation
        ctx = dataclasses.replace(ctx, worker_model=str(retry["model"]), worker_models={})
        ctx = dataclasses.replace(ctx, model_ladders={})
    if retry.get("note"):
        feedback = [f"A person asked for this retry: {retry['note']}"]

    def first_try(name: str) -> Try:
        ladder = ladder_of(ctx, name)
        if not ladder or registry[name].graph is None and registry[name].runner is None:
            return Try(name, ctx, label=registry[name].model_label)
        rung = starting_rung(ladder, hist, registry[name].capability, ctx)
        return Try(name, on_rung(ctx, name, ladder, rung), rung, label=registry[name].model_label)

    current = first_try(worker)
    # Cross-run cache: an identical subtask accepted in an earlier run is reused, no attempt;
    # with a ladder, one accepted on the starting rung or any above it (where a climb ended)
    ladder = ladder_of(ctx, worker) if current.rung is not None else []
    above = range((current.rung or 0) + 1, len(ladder))
    rungs = [current.ctx, *(on_rung(ctx, worker, ladder, rung) for rung in above)]
    for on in rungs:
        if (hit := await result_cache.reuse(job, registry[worker], deps, on)) is not None:
            return await outputs.stow(hit)
    attempts: list[AttemptRecord] = []
    on_worker = 0
    refused: str | None = None
    while True:
        on_worker += 1
        inp = WorkerInput(
            subtask=sub,
            dependencies=deps,
            feedback=feedback,
            clarification=job["clarification"],
            sender=job.get("sender"),
            attempt=len(attempts) + 1,
        )
        if not attempts and budgeted(ctx):  # before dispatching: its first attempt's cost
            refused = refusal(hist, current, inp, ledger, ctx)
            if refused:
                break
        outcomes = await attempt_or_hedge(
            job, sub, inp, current, registry, workers, hist, ledger, attempts, ctx
        )
        (main, current), others = outcomes[0], [o for o, _ in outcomes[1:]]
        for extra in others:  # the attempt that lost the race, or that failed too
            n = len(attempts) + 1
            attempts.append(attempt_record(extra, n, inp, sub, job, deps, extra_verdict(extra)))
        if main.refused:
            refused = main.error
            attempts.append(attempt_record(main, len(attempts) + 1, inp, sub, job, deps, "give_up"))
            break
        spec = registry[main.worker]
        alternatives = [a for a in spec.alternatives if a not in tried]
        verdict = decide(main.output, main.problems, on_worker, bool(alternatives), ctx)
        ladder = ladder_of(ctx, main.worker)
        climb = (
            verdict in ("retry", "substitute", "give_up")
            and current.rung is not None
            and current.worker == main.worker
            and current.rung + 1 < len(ladder)
        )
        if climb:
            verdict = "retry"
        attempts.append(attempt_record(main, len(attempts) + 1, inp, sub, job, deps, verdict))
        emit("verdict", subtask=sub.id, worker=main.worker, verdict=verdict, problems=main.problems)
        if verdict == "retry":
            feedback = main.problems
            if climb:  # a failure moves one rung up; the climb is not one of the retries
                assert current.rung is not None
                rung = current.rung + 1
                current = dataclasses.replace(
                    current, ctx=on_rung(ctx, main.worker, ladder, rung), rung=rung
                )
                on_worker = 0
            continue
        if verdict == "substitute":
            tried.append(alternatives[0])
            current = first_try(alternatives[0])
            on_worker = 0
            feedback = main.problems
            continue
        if verdict == "accept":  # Cross-run cache: kept for identical subtasks of later runs
            await result_cache.remember(job, spec, deps, current.ctx, main.output, attempts)
        return await finish(job, sub, main, verdict, attempts, registry, tried, store)
    return await finish_refused(job, sub, refused or "", attempts, registry, tried, store)


def refusal(
    hist: History, current: Try, inp: WorkerInput, ledger: Ledger, ctx: Context
) -> str | None:
    """Why the subtask may not start under the budgets, from its estimated cost, or None."""
    usd, tokens = estimate(hist, current.worker, current.model, request_prompt(inp), ctx)
    reason = ledger.refusal(usd, tokens)
    if reason is None and ctx.max_subtask_cost_usd and usd > ctx.max_subtask_cost_usd:
        reason = f"${usd:.4f} estimated, past the subtask's cap of ${ctx.max_subtask_cost_usd:g}"
    if reason is None:
        return None
    return f"refused before spending: {current.worker} on {current.model}: {reason}"


def attempt_record(
    outcome: Outcome,
    n: int,
    inp: WorkerInput,
    sub: Subtask,
    job: Job,
    deps: dict[str, DependencyResult],
    verdict: AttemptVerdict,
) -> AttemptRecord:
    """The audit record of one attempt."""
    record: AttemptRecord = {
        "n": n,
        "worker": outcome.worker,
        "model": outcome.model,
        "started_at": outcome.started,
        "duration_s": outcome.duration_s,
        "input": {
            "objective": sub.objective,
            "dependencies": sorted(deps),
            "feedback": list(inp.feedback),
            "clarification": job["clarification"],
        },
        "status": "cancelled"
        if verdict == "cancelled"
        else (outcome.output or {}).get("status", "failed"),
        "output": outcome.output,
        "error": redact(outcome.error) if outcome.error else None,
        "verdict": verdict,
        "feedback": [redact(p) for p in outcome.problems],
        "usage": sum_usage(outcome.by_model.values()),
        "usage_by_model": outcome.by_model,
    }
    if outcome.calls:
        record["tool_calls"] = outcome.calls
    if outcome.hedged:
        record["hedged"] = True
    return record


async def finish(
    job: Job,
    sub: Subtask,
    main: Outcome,
    verdict: AttemptVerdict,
    attempts: list[AttemptRecord],
    registry: WorkerRegistry,
    tried: list[str],
    store: Any,
) -> SubtaskRecord:
    """The subtask's record from its last counted attempt's verdict."""
    spec = registry[main.worker]
    output = main.output
    status = {
        "accept": "accepted",
        "clarify": "needs_clarification",
        "not_found": "not_found",
    }.get(verdict, "failed")
    error = None if verdict in ("accept", "clarify") else redact("; ".join(main.problems))
    if verdict == "not_found":
        error = redact(str((output or {}).get("error") or "nothing found on the objective"))
    if verdict == "accept" and spec.blocking_findings and output is not None:
        # A sound review that found problems: kept, but its dependents wait for fixes.
        if blocking := spec.blocking_findings(output):
            status = "changes_requested"
            error = "changes requested: " + "; ".join(blocking)
    record: SubtaskRecord = {
        "id": sub.id,
        "fingerprint": job["fingerprint"],
        "worker": main.worker,
        "status": status,  # type: ignore[typeddict-item]
        "text": spec.render(output) if verdict == "accept" and output else "",
        "output": output if verdict == "accept" else None,
        "question": (output or {}).get("question") if verdict == "clarify" else None,
        "clarification": job["clarification"],
        "error": error,
        "attempts": attempts,
        "usage": sum_usage(a["usage"] for a in attempts),
        "plan_version": job["plan_version"],
        "answers": job.get("answers", 0),
    }
    return await keep(record, registry, tried, store)


async def finish_refused(
    job: Job,
    sub: Subtask,
    reason: str,
    attempts: list[AttemptRecord],
    registry: WorkerRegistry,
    tried: list[str],
    store: Any,
) -> SubtaskRecord:
    """The record of a subtask a budget stopped: what was not done, and why."""
    record: SubtaskRecord = {
        "id": sub.id,
        "fingerprint": job["fingerprint"],
        "worker": sub.worker,
        "status": "over_budget",
        "text": "",
        "output": None,
        "question": None,
        "clarification": job["clarification"],
        "error": redact(reason),
        "attempts": attempts,
        "usage": sum_usage(a["usage"] for a in attempts),
        "plan_version": job["plan_version"],
        "answers": job.get("answers", 0),
    }
    emit("verdict", subtask=sub.id, worker=sub.worker, verdict="over_budget", problems=[reason])
    return await keep(record, registry, tried, store)


async def keep(
    record: SubtaskRecord, registry: WorkerRegistry, tried: list[str], store: Any
) -> SubtaskRecord:
    """Add the record's attempts to the run history, and stow its large fields."""
    workers = {a["worker"] for a in record["attempts"]} | set(tried)
    capabilities = {w: registry[w].capability for w in workers if w in registry}
    await history.record_attempts(store, record, capabilities, outputs.thread_id())
    return await outputs.stow(record)
