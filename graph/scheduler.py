"""Dataflow dispatch: each subtask starts as soon as its own dependencies are accepted.

A `Send` fan-out runs in supersteps: a step ends when its slowest branch ends, so a subtask
that became ready early waits for unrelated siblings (1.09-1.72x the critical path on the
reference graphs). The dispatch node instead runs every subtask of the round as a LangGraph
task (`langgraph.func.task`) inside one step; a task waits for its own dependencies, then
for a free slot (`max_parallel`), then runs. Tasks heading the longest remaining chain are
started first (critical-path-first, from the planner's duration estimates when it gives
them, else chain length).

Durability: each finished task is checkpointed on its own, and a resumed run replays
finished tasks without running them again. LangGraph matches a replayed result to the
call by call order, so the node calls the tasks in an order fixed by the plan alone, whatever
order they finish in: a result can only be replayed into the subtask that produced it
(and each record carries its subtask id and fingerprint, which the node checks).

Quorums (`quorum.py`): once k members of a group are accepted, the group's other members
still waiting or running are cancelled. The LangGraph task itself is never cancelled (that
would leave no result to checkpoint and replay): `run_subtask` runs its work as an inner
asyncio task, cancels only that, and returns a `cancelled` record, which is checkpointed
and replayed like any other.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from langgraph.func import task
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import push_message
from langgraph.runtime import Runtime, get_runtime

from foreman.core.context import Context
from foreman.core.schemas import Plan, Subtask
from foreman.core.state import (
    SETTLED,
    USABLE,
    AuditEvent,
    State,
    SubtaskRecord,
    Usage,
    add_usage,
    empty_usage,
)
from foreman.orchestration import quorum, result_cache
from foreman.orchestration.audit import emit, event, total_usage, with_settings
from foreman.orchestration.budget import Ledger
from foreman.orchestration.conversation import messages_streamed, progress_message
from foreman.orchestration.execution import Job, execute_subtask
from foreman.orchestration.outputs import DEPENDENCY_FIELDS
from foreman.orchestration.plan_validation import fingerprints, start_order
from foreman.orchestration.records import current_plan, current_records, has_new_answer
from foreman.workers.registry import WorkerRegistry
from foreman.workers.router import AttemptState, WorkersGraph

BLOCKED = "blocked"  # internal: a dependency did not succeed; never stored in state


class DispatchAborted(RuntimeError):
    """Raised in waiting subtasks when their dispatch round fails."""


@dataclass
class Board:
    """What the tasks of one dispatch round share: results so far, slots, a stop flag."""

    plan: Plan
    results: dict[str, asyncio.Future[SubtaskRecord]]
    slots: asyncio.Semaphore
    stop_reason: str | None = None
    spent: Usage = field(default_factory=empty_usage)
    ledger: Ledger = field(default_factory=Ledger)
    """What the run spent and its calls in flight reserved, checked before each call."""
    cancelled: dict[str, str] = field(default_factory=dict)
    """Subtask id -> why it is cancelled (its group met its quorum without it)."""
    working: dict[str, asyncio.Task[SubtaskRecord]] = field(default_factory=dict)
    """The inner work of each `run_subtask` started, which a quorum may cancel."""
    keep: frozenset[str] = frozenset()
    """Subtasks a person asked to run again (`foreman rerun`): never cancelled."""
    grouped: frozenset[str] = frozenset()
    """Subtasks in a quorum group: only they need the quorum's checks (which read the plan)."""


_BOARDS: dict[str, Board] = {}


def over_budget(ctx: Context, spent: Usage) -> str | None:
    """Why no more subtasks may start under the run's budgets, or None."""
    tokens = spent["input_tokens"] + spent["output_tokens"]
    if ctx.max_total_tokens and tokens >= ctx.max_total_tokens:
        return f"token budget of {ctx.max_total_tokens} reached"
    if ctx.max_cost_usd and spent["cost_usd"] >= ctx.max_cost_usd:
        return f"cost budget of ${ctx.max_cost_usd:g} reached"
    return None


def needs_run(sub: Subtask, rec: SubtaskRecord | None, state: State) -> bool:
    """Whether a subtask must (re)run in this round."""
    if rec is None:
        return True
    if rec["status"] in SETTLED:
        return False
    if rec["status"] == "rerun":
        return True
    if rec["status"] == "failed":  # rerun only once the plan was revised
        return rec["plan_version"] < state.get("plan_version", 1)
    return has_new_answer(state, rec)


def unrun_record(job: Job, status: str, error: str) -> SubtaskRecord:
    """The record of a subtask that did not run (blocked or over budget)."""
    sub = job["subtask"]
    return {
        "id": sub["id"], "fingerprint": job["fingerprint"], "worker": sub["worker"],
        "status": status,  # type: ignore[typeddict-item]
        "text": "", "output": None, "question": None, "clarification": None,
        "error": error, "attempts": [], "usage": empty_usage(),
        "plan_version": job["plan_version"],
    }  # fmt: skip


def _consume(fut: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen (it was reported through the node already)."""
    if not fut.cancelled():
        fut.exception()


def cancel_spare(board: Board, statuses: dict[str, str]) -> list[AuditEvent]:
    """Cancel the members of groups that just met their quorum; return the audit entries.

    A member not started yet returns its `cancelled` record as soon as its task runs; one
    under way has its inner work cancelled (`run_subtask`). A member that already finished
    (failed, say) keeps its record, and so do those in `board.keep`.
    """
    entries: list[AuditEvent] = []
    members = quorum.groups(board.plan)
    for group in sorted(quorum.met(board.plan, statuses)):
        stopped = [
            m
            for m in members[group]
            if m not in board.cancelled
            and m not in board.keep
            and statuses.get(m) not in quorum.COUNTED
            and not board.results[m].done()
            and not (m in board.working and board.working[m].done())  # ended, not yet read
        ]
        if not stopped:
            continue
        why = quorum.reason(board.plan, group)
        for m in stopped:
            board.cancelled[m] = why
            if m in board.working:
                board.working[m].cancel()
        accepted = [m for m in members[group] if statuses.get(m) in quorum.COUNTED]
        emit("quorum", group=group, accepted=accepted, cancelled=stopped)
        entries.append(
            event(
                "quorum",
                group=group,
                quorum=quorum.needed(board.plan, group),
                size=len(members[group]),
                accepted=accepted,
                cancelled=stopped,
            )
        )
    return entries


def report_result(rec: SubtaskRecord) -> AuditEvent:
    """Announce a subtask's outcome on the progress stream; return its audit entry."""
    seconds = round(sum(a["duration_s"] for a in rec["attempts"]), 3)
    emit(
        "subtask",
        id=rec["id"],
        status=rec["status"],
        worker=rec["worker"],
        attempts=len(rec["attempts"]),
        seconds=seconds,
    )
    started = rec["attempts"][0]["started_at"] if rec["attempts"] else None
    return event(
        "result",
        rec["id"],
        status=rec["status"],
        attempts=len(rec["attempts"]),
        started=started,
        seconds=seconds,
    )


def usage_by_model(records: Iterable[SubtaskRecord]) -> dict[str, Usage]:
    """Usage of the attempts of `records`, per model spec."""
    usage: dict[str, Usage] = {}
    for rec in records:
        for att in rec["attempts"]:
            for model, u in att["usage_by_model"].items():
                usage[model] = add_usage(usage.get(model, empty_usage()), u)
    return usage


def new_job(
    sub: Subtask, state: State, fingerprint: str, dependencies: dict[str, Any] | None = None
) -> Job:
    """The private input of one subtask dispatch."""
    job: Job = {
        "subtask": sub.model_dump(mode="json"),
        "dependencies": dependencies or {},
        "clarification": (state.get("clarifications") or {}).get(sub.id),
        "answers": (state.get("answers") or {}).get(sub.id, 0),
        "sender": state.get("sender"),
        "fingerprint": fingerprint,
        "plan_version": state.get("plan_version", 1),
    }
    rec = (state.get("results") or {}).get(sub.id)
    if rec and rec["status"] == "rerun" and rec.get("retry") and rec["fingerprint"] == fingerprint:
        job["retry"] = rec["retry"]  # a person's retry at an escalation
    if rec and rec["status"] == "rerun":
        job["rerun"] = True  # asked to run again: the cache is refreshed, not read
    return job


def as_dependency(rec: SubtaskRecord) -> dict[str, Any]:
    """What a dependent receives of an accepted record."""
    keys = ("id", "worker", "status", "text", "output")
    dep: dict[str, Any] = {k: rec[k] for k in keys}  # type: ignore[literal-required]
    refs = {p: k for p, k in (rec.get("refs") or {}).items() if p in DEPENDENCY_FIELDS}
    if refs:  # loaded by the subtask that needs it (foreman.orchestration.outputs)
        dep["refs"] = refs
    return dep


SUBTASK_TASK = "run_subtask"


def subtask_view(workers: WorkersGraph | None) -> WorkersGraph | None:
    """The dispatch node as LangGraph sees it: `run_subtask` tasks running the workers graph.

    Never run. A subtask's attempts run the workers graph inside its `run_subtask` task, so
    LangGraph saves an attempt's worker state under
    `dispatch:<id>|run_subtask:<id>|<worker>:<id>` (`run_subtask:<id>|1|<worker>:<id>` for
    the task's second attempt, and so on), and resolves a namespace, its ids dropped, as a
    path through the graph's nodes: `dispatch|run_subtask|<worker>`. This graph is the
    `run_subtask` step of that path. Found in the dispatch node's closure, it lets Studio
    draw the workers inside `dispatch` and read an attempt's state with its worker's
    channels. None without graph workers.
    """
    if workers is None:
        return None
    builder = StateGraph(AttemptState, context_schema=Context)
    builder.add_node(SUBTASK_TASK, workers)
    builder.add_edge(START, SUBTASK_TASK)
    builder.add_edge(SUBTASK_TASK, END)
    return builder.compile(name="dispatch")


def make_dispatch(
    registry: WorkerRegistry, workers: WorkersGraph | None
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the dispatch node for a worker registry and its workers graph."""
    view = subtask_view(workers)

    @task(name=SUBTASK_TASK)  # type: ignore[arg-type]  # mypy cannot solve its ParamSpec
    async def run_subtask(job: Job, board_id: str) -> SubtaskRecord:
        """One subtask: its work, unless a quorum cancels it (then a `cancelled` record)."""
        board = _BOARDS[board_id]
        sid = job["subtask"]["id"]
        if sid in board.cancelled:  # its group met its quorum before it started
            return unrun_record(job, quorum.CANCELLED, board.cancelled[sid])
        work = asyncio.ensure_future(work_on(job, board))
        board.working[sid] = work
        try:
            return await work
        except asyncio.CancelledError:
            this = asyncio.current_task()
            if sid not in board.cancelled or (this is not None and this.cancelling()):
                raise  # the run itself is being cancelled, not this member
            return unrun_record(job, quorum.CANCELLED, board.cancelled[sid])

    async def work_on(job: Job, board: Board) -> SubtaskRecord:
        """Wait for the inputs and a slot, then attempts until a verdict."""
        sub = job["subtask"]
        # shielded: cancelling this work must not cancel the shared futures it waits on
        deps = [await asyncio.shield(board.results[d]) for d in sub["inputs"]]
        # inputs from a group that met its quorum without them are left out, not missing
        if board.grouped.intersection(sub["inputs"]):
            spare = quorum.spare(board.plan, {d["id"]: d["status"] for d in deps})
            deps = [d for d in deps if d["id"] not in spare]
        failed = [d["id"] for d in deps if d["status"] not in USABLE]
        if failed:
            return unrun_record(job, BLOCKED, f"inputs not available: {', '.join(failed)}")
        async with board.slots:
            if board.stop_reason:
                return unrun_record(job, "over_budget", f"not run: {board.stop_reason}")
            emit("subtask", id=sub["id"], status="running", worker=sub["worker"])
            ctx = get_runtime(Context).context
            job = {**job, "dependencies": {d["id"]: as_dependency(d) for d in deps}}
            return await execute_subtask(job, registry, workers, ctx, board.ledger)

    async def dispatch(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Run the subtasks of the plan that still need running, dependencies first."""
        _ = view  # LangGraph finds a node's subgraph among the names its function uses
        return with_settings(state, runtime.context, await run_round(state, runtime.context))

    async def run_round(state: State, ctx: Context) -> dict[str, Any]:
        if ctx.scheduler == "waves":
            from foreman.orchestration.waves import plan_wave

            return plan_wave(state, ctx)
        plan = current_plan(state)
        prints = fingerprints(plan)
        version = state.get("plan_version", 1)
        known = current_records(state, prints)
        by_id = {s.id: s for s in plan.subtasks}
        statuses: dict[str, str] = {i: r["status"] for i, r in known.items()}
        again = quorum.reopened(plan, statuses)
        todo = [
            by_id[i]
            for i in start_order(plan)
            if i in again or needs_run(by_id[i], known.get(i), state)
        ]
        loop = asyncio.get_running_loop()
        board = Board(
            plan,
            results={},
            slots=asyncio.Semaphore(max(1, ctx.max_parallel)),
            keep=frozenset(i for i, st in statuses.items() if st == "rerun"),
            grouped=frozenset(s.id for s in plan.subtasks if s.group is not None),
        )
        todo_ids = {s.id for s in todo}
        for sub in plan.subtasks:
            board.results[sub.id] = loop.create_future()
            if sub.id not in todo_ids and sub.id in known:
                board.results[sub.id].set_result(known[sub.id])
        board.spent = total_usage(state)
        board.ledger = Ledger.of(ctx, board.spent)
        board.stop_reason = over_budget(ctx, board.spent)
        board_id = uuid.uuid4().hex
        _BOARDS[board_id] = board
        audit = [event("dispatch_round", plan_version=version, todo=[s.id for s in todo])]
        # Members of a group already met (a resumed round): cancelled before they start. A
        # person's explicit `foreman rerun` of one is honoured.
        if board.grouped:
            audit += cancel_spare(board, statuses)
        steps = [(s.id, s.worker) for s in plan.subtasks]
        streamed = messages_streamed()
        new: dict[str, SubtaskRecord] = {}
        calls: dict[asyncio.Future[SubtaskRecord], str] = {}
        # Finished calls, in finishing order: O(1) per completion (asyncio.wait over the
        # pending set costs O(pending) per wake-up).
        finished: asyncio.Queue[asyncio.Future[SubtaskRecord]] = asyncio.Queue()
        try:
            for sub in todo:  # a fixed order given the plan: the replay contract (see above)
                call: asyncio.Future[SubtaskRecord] = asyncio.ensure_future(
                    run_subtask(new_job(sub, state, prints[sub.id]), board_id)  # type: ignore[arg-type]
                )
                calls[call] = sub.id
                call.add_done_callback(finished.put_nowait)
            for _ in range(len(calls)):
                fut = await finished.get()
                rec = fut.result()
                sid = calls[fut]
                if rec["id"] != sid or rec["fingerprint"] != prints[sid]:
                    raise RuntimeError(
                        f"replayed result of {rec['id']} arrived for {sid}; the checkpoint "
                        "does not match this plan"
                    )
                board.results[sid].set_result(rec)
                if rec["status"] == BLOCKED:
                    continue
                new[sid] = rec
                statuses[sid] = rec["status"]
                board.spent = add_usage(board.spent, rec["usage"])
                board.stop_reason = board.stop_reason or over_budget(ctx, board.spent)
                audit += [report_result(rec), *result_cache.audit_events(rec)]
                if by_id[sid].group is not None and rec["status"] in quorum.COUNTED:
                    audit += cancel_spare(board, statuses)
                if streamed:  # to chat clients (messages mode) as it happens; not in state
                    push_message(progress_message(version, steps, statuses), state_key=None)
        except BaseException:
            # Release tasks still waiting on inputs so the failure surfaces now; they
            # leave no result behind, so a resume runs them again.
            for fut in board.results.values():
                if not fut.done():
                    fut.set_exception(DispatchAborted("the dispatch round failed"))
            for fut in [*board.results.values(), *calls]:
                fut.add_done_callback(_consume)
            raise
        finally:
            del _BOARDS[board_id]
        if board.stop_reason:
            audit.append(event("budget_stop", reason=board.stop_reason))
        return {
            "results": new,
            "usage": usage_by_model(new.values()),
            "audit": audit,
            "status": "over_budget" if board.stop_reason else "running",
        }

    return dispatch
