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
from foreman.core.state import AttemptRecord, SubtaskRecord, Usage, empty_usage, sum_usage
from foreman.orchestration import history, outputs, result_cache
from foreman.orchestration.attempts import (
    ATTEMPT_DURABILITY,
    SUBTASK_TAG,
    Outcome,
    attempt_config,
    one_attempt,
    tracer_listens,
)
from foreman.orchestration.audit import emit
from foreman.orchestration.budget import BudgetGuard, Ledger, estimate
from foreman.orchestration.cascade import ladder_of, starting_rung
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


@dataclasses.dataclass
class Try:
    """One attempt to make: which worker, on which model (its ladder's rung, if any)."""

    worker: str
    ctx: Context
    rung: int | None = None
    hedged: bool = False
    label: Any = None
    """The worker's `model_label` (a declared worker's own model, a remote's address)."""

    @property
    def model(self) -> str:
        """What the attempt runs on, as the audit and the budget estimates name it."""
        if self.label is not None:
            return str(self.label(self.ctx))
        return self.ctx.model_for_worker(self.worker)


def on_rung(ctx: Context, worker: str, ladder: list[str], rung: int) -> Context:
    """`ctx` with the worker's model set to its ladder's `rung`."""
    return dataclasses.replace(ctx, worker_models={**ctx.worker_models, worker: ladder[rung]})


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
    registry = await asyncio.to_thread(registry_for, registry, ctx)  # + the workers file's
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
    # Cross-run cache: an identical subtask accepted in an earlier run is reused, no attempt.
    if (hit := await result_cache.reuse(job, registry[worker], deps, current.ctx)) is not None:
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


def budgeted(ctx: Context) -> bool:
    """Whether the run has a budget a call could be refused under."""
    return bool(ctx.max_cost_usd or ctx.max_total_tokens or ctx.max_subtask_cost_usd)


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


async def attempt_or_hedge(
    job: Job,
    sub: Subtask,
    inp: WorkerInput,
    current: Try,
    registry: WorkerRegistry,
    workers: WorkersGraph | None,
    hist: History,
    ledger: Ledger,
    attempts: list[AttemptRecord],
    ctx: Context,
) -> list[tuple[Outcome, Try]]:
    """Run the attempt; when it is late, also a hedge. The outcome that counts comes first.

    Late means past `ctx.hedge_percentile` of the worker's latency on its model, once the
    history has `hedge_min_attempts` of them. The first acceptable outcome wins and the other
    attempt is cancelled (and comes second, marked cancelled); when neither is acceptable,
    the one that finished last counts, the other comes second.
    """
    spent = sum(a["usage"]["cost_usd"] for a in attempts)

    def start(t: Try) -> tuple[asyncio.Task[Outcome], BudgetGuard | None]:
        spec = registry[t.worker]
        # The guard refuses calls past a budget, and counts what a cancelled hedge spent;
        # without either there is nothing for it to do (it costs a traced run per call).
        guard = (
            BudgetGuard(ledger, hist, t.worker, t.ctx, subtask_spent_usd=spent)
            if budgeted(ctx) or ctx.hedge_percentile
            else None
        )
        emit(
            "attempt",
            subtask=sub.id,
            worker=t.worker,
            attempt=inp.attempt,
            model=t.model,
            hedged=t.hedged,
        )
        trace = attempt_config(sub, t.worker, inp.attempt, job["plan_version"], t.model)
        return asyncio.ensure_future(
            marked(one_attempt(workers, spec, inp, t.ctx, trace, guard), t)
        ), guard

    first, first_guard = start(current)
    late = hedge_after(hist, current, ctx)
    if late is None:
        return [(await first, current)]
    done, _ = await asyncio.wait({first}, timeout=late)
    if done:
        return [(first.result(), current)]
    other = hedge_of(current, registry, ctx)
    second, second_guard = start(other)
    emit("hedge", subtask=sub.id, worker=other.worker, model=other.model, after_s=late)
    guards = {first: (first_guard, current), second: (second_guard, other)}
    pending: set[asyncio.Task[Outcome]] = {first, second}
    finished: list[tuple[Outcome, Try]] = []
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                outcome = task.result()
                finished.append((outcome, guards[task][1]))
                if not outcome.problems and not outcome.refused:
                    losers = [(await cancelled(t, *guards[t]), guards[t][1]) for t in pending]
                    pending = set()
                    return [finished[-1], *losers]
    finally:
        for task in pending:
            task.cancel()
    return [finished[-1], finished[0]]


async def marked(attempt: Any, t: Try) -> Outcome:
    """The attempt's outcome, marked when it is a hedge."""
    outcome: Outcome = await attempt
    outcome.hedged = t.hedged
    return outcome


async def cancelled(task: asyncio.Task[Outcome], guard: BudgetGuard | None, t: Try) -> Outcome:
    """Cancel a losing attempt; what it spent before is counted, marked cancelled."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    tokens_in = tokens_out = 0
    spent_usd = 0.0
    if guard is not None:  # always there when hedging (see `start`)
        guard.release_open()
        (tokens_in, tokens_out), spent_usd = guard.spent_tokens, guard.spent_usd
    usage: Usage = {
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cost_usd": round(spent_usd, 8),
        "calls": 0,
    }
    reason = "cancelled: the other attempt answered first"
    by_model = {t.model: usage} if tokens_in else {}
    return Outcome(t.worker, t.model, None, reason, [reason], by_model, hedged=t.hedged)


def extra_verdict(outcome: Outcome) -> AttemptVerdict:
    """The verdict recorded for the attempt that did not count."""
    if outcome.error and outcome.error.startswith("cancelled:"):
        return "cancelled"
    return "accept" if not outcome.problems else "retry"


def hedge_after(hist: History, current: Try, ctx: Context) -> float | None:
    """Seconds after which the attempt is late and gets a hedge, or None (no hedging)."""
    if not ctx.hedge_percentile:
        return None
    stats = hist.worker(current.worker, current.model)
    if stats.attempts < ctx.hedge_min_attempts:
        return None
    return stats.latency(ctx.hedge_percentile)


def hedge_of(current: Try, registry: WorkerRegistry, ctx: Context) -> Try:
    """The hedge: the next rung's model, else the first alternative worker, else the same."""
    ladder = ladder_of(ctx, current.worker)
    if current.rung is not None and current.rung + 1 < len(ladder):
        rung = current.rung + 1
        moved = on_rung(ctx, current.worker, ladder, rung)
        return dataclasses.replace(current, ctx=moved, rung=rung, hedged=True)
    spec = registry[current.worker]
    if spec.alternatives:
        other = spec.alternatives[0]
        return Try(other, ctx, None, True, label=registry[other].model_label)
    return dataclasses.replace(current, hedged=True)


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
