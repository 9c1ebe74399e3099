"""Stragglers: a late attempt gets a hedge; the first acceptable result wins.

Late means past `Context.hedge_percentile` of the worker's observed latency on its model,
once the run history has `hedge_min_attempts` of them. The hedge runs the next rung's model
(`cascade.py`), else the worker's first alternative, else the same again. The attempt that
loses is cancelled, and what it had spent (its budget guard saw each call) is recorded.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from foreman.core.context import Context
from foreman.core.schemas import Subtask
from foreman.core.state import AttemptRecord, Usage
from foreman.orchestration.attempts import Outcome, attempt_config, one_attempt
from foreman.orchestration.audit import emit
from foreman.orchestration.budget import BudgetGuard, Ledger
from foreman.orchestration.cascade import Try, ladder_of, on_rung
from foreman.orchestration.history import History
from foreman.orchestration.validation import AttemptVerdict
from foreman.workers.base import WorkerInput
from foreman.workers.registry import WorkerRegistry
from foreman.workers.router import WorkersGraph


def budgeted(ctx: Context) -> bool:
    """Whether the run has a budget a call could be refused under."""
    return bool(ctx.max_cost_usd or ctx.max_total_tokens or ctx.max_subtask_cost_usd)


async def attempt_or_hedge(
    job: Any,
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

    def begin(t: Try) -> tuple[Any, BudgetGuard | None]:
        """The attempt's coroutine (not started) and its budget guard."""
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
        attempt = one_attempt(workers, spec, inp, t.ctx, trace, guard)
        return (marked(attempt, t) if t.hedged else attempt), guard

    def start(t: Try) -> tuple[asyncio.Task[Outcome], BudgetGuard | None]:
        attempt, guard = begin(t)
        return asyncio.ensure_future(attempt), guard

    late = hedge_after(hist, current, ctx)
    if late is None:  # no race to run: the attempt in this task
        return [(await begin(current)[0], current)]
    first, first_guard = start(current)
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
