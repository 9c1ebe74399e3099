"""The `waves` scheduler: a `Send` fan-out to the worker node, a round at a time.

This is LangGraph's classic map step, and each subtask is a branch you can see in Studio.
A round ends when its slowest branch ends, so on uneven graphs it is slower than the default
`dataflow` scheduler (see README, Benchmarks); choose it with `Context.scheduler = "waves"`.

Quorums (`quorum.py`) hold here too, at round boundaries: members of a group that met its
quorum are not dispatched (their records say `cancelled`), but members already sent in the
same round as the accepted ones run to their end (a `Send` branch cannot be stopped).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Send

from foreman.core.context import Context
from foreman.core.state import USABLE, AuditEvent, State, SubtaskRecord
from foreman.orchestration import quorum, result_cache
from foreman.orchestration.audit import emit, event, total_usage
from foreman.orchestration.budget import LEDGERS, Ledger, register
from foreman.orchestration.execution import Job, execute_subtask
from foreman.orchestration.plan_validation import fingerprints, start_order
from foreman.orchestration.records import current_plan, current_records
from foreman.orchestration.scheduler import (
    as_dependency,
    needs_run,
    new_job,
    over_budget,
    report_result,
    unrun_record,
    usage_by_model,
)
from foreman.workers.registry import WorkerRegistry
from foreman.workers.router import WorkersGraph


def _todo(state: State) -> tuple[list[Job], list[Job], list[Job]]:
    """Jobs of this round: (ready to run, waiting on inputs, not needed), longest chains first.

    Not needed: members of a group that met its quorum without them.
    """
    plan = current_plan(state)
    prints = fingerprints(plan)
    known = current_records(state, prints)
    statuses = {i: r["status"] for i, r in known.items()}
    spare = quorum.spare(plan, statuses)
    again = quorum.reopened(plan, statuses)
    by_id = {s.id: s for s in plan.subtasks}
    ready: list[Job] = []
    waiting: list[Job] = []
    unneeded: list[Job] = []
    for sid in start_order(plan):
        sub = by_id[sid]
        if sid not in again and not needs_run(sub, known.get(sid), state):
            continue
        deps = [known.get(d) for d in sub.inputs if d not in spare]
        inputs = {d["id"]: as_dependency(d) for d in deps if d is not None}
        job = new_job(sub, state, prints[sid], inputs)
        usable = all(d is not None and d["status"] in USABLE for d in deps)
        if sid in spare and statuses.get(sid) != "rerun":  # a person's rerun is honoured
            unneeded.append(job)
        else:
            (ready if usable else waiting).append(job)
    return ready, waiting, unneeded


def _cancel(state: State, jobs: list[Job]) -> tuple[dict[str, SubtaskRecord], list[AuditEvent]]:
    """`cancelled` records for members not needed, and an audit entry per group."""
    plan = current_plan(state)
    known = current_records(state, fingerprints(plan))
    records: dict[str, SubtaskRecord] = {}
    audit: list[AuditEvent] = []
    by_group: dict[str, list[str]] = {}
    for job in jobs:
        group = str(job["subtask"]["group"])
        by_group.setdefault(group, []).append(job["subtask"]["id"])
        records[job["subtask"]["id"]] = unrun_record(
            job, quorum.CANCELLED, quorum.reason(plan, group)
        )
    for group, ids in by_group.items():
        emit("quorum", group=group, cancelled=ids)
        members = quorum.groups(plan)[group]
        audit.append(
            event(
                "quorum",
                group=group,
                quorum=quorum.needed(plan, group),
                size=len(members),
                accepted=[
                    m for m in members if m in known and known[m]["status"] in quorum.COUNTED
                ],
                cancelled=ids,
            )
        )
    return records, audit


def plan_wave(state: State, ctx: Context) -> dict[str, Any]:
    """The dispatch node in waves mode: check the budget, record the round."""
    ready, waiting, unneeded = _todo(state)
    cancelled, audit = _cancel(state, unneeded)
    reason = over_budget(ctx, total_usage(state))
    if reason:
        stopped = {
            j["subtask"]["id"]: unrun_record(j, "over_budget", f"not run: {reason}")
            for j in ready + waiting
        }
        return {
            "results": cancelled | stopped,
            "status": "over_budget",
            "audit": [*audit, event("budget_stop", reason=reason)],
        }
    wave = [j["subtask"]["id"] for j in ready[: max(1, ctx.max_parallel)]]
    return {
        "results": cancelled,
        "status": "running",
        "audit": [*audit, event("dispatch_round", mode="waves", wave=wave)],
    }


def route_after_dispatch(
    state: State, runtime: Runtime[Context]
) -> list[Send] | Literal["validate"]:
    """In waves mode, one `Send` to the worker node per ready subtask; else on to validate."""
    if runtime.context.scheduler != "waves" or state.get("status") == "over_budget":
        return "validate"
    ready, _, _ = _todo(state)
    ledger = register(Ledger.of(runtime.context, total_usage(state)))
    wave = ready[: max(1, runtime.context.max_parallel)]
    sends = [Send("worker", {**job, "ledger": ledger}) for job in wave]
    return sends or "validate"


def make_worker_node(
    registry: WorkerRegistry, workers: WorkersGraph | None
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the worker node a waves-mode `Send` runs: one subtask to its verdict.

    Attempts of graph workers run the workers graph (`workers`), which LangGraph finds in
    this node's closure: Studio draws it inside `worker`, and reads an attempt's worker state
    under `worker:<id>|<worker>:<id>` (`worker:<id>|1|<worker>:<id>` for the second attempt,
    and so on).
    """

    async def worker(job: Job, runtime: Runtime[Context]) -> dict[str, Any]:
        """Run one subtask (attempts, validation, retry, substitution) and record it."""
        sub = job["subtask"]
        emit("subtask", id=sub["id"], status="running", worker=sub["worker"])
        ledger = LEDGERS.get(str(job.get("ledger")))
        rec = await execute_subtask(job, registry, workers, runtime.context, ledger)
        return {
            "results": {rec["id"]: rec},
            "usage": usage_by_model([rec]),
            "audit": [report_result(rec), *result_cache.audit_events(rec)],
        }

    return worker
