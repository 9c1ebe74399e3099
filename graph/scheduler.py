"""Dataflow dispatch: each subtask starts as soon as its own dependencies are accepted.

A `Send` fan-out runs in supersteps: a step ends when its slowest branch ends, so a
subtask that became ready early waits for unrelated siblings (1.09-1.72x the critical
path on the reference graphs). The dispatch node instead starts every subtask as a
LangGraph task (`langgraph.func.task`) the moment its inputs are accepted. Each finished
task is checkpointed on its own, so a resumed run replays finished subtasks without
running them again; because LangGraph matches replayed task results by call order, every
result carries its subtask id and fingerprint and is attached by those, never by order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.func import task
from langgraph.runtime import Runtime, get_runtime

from graph.audit import emit, event
from graph.context import Context
from graph.execution import Job, execute_subtask
from graph.plan_validation import fingerprints
from graph.schemas import Plan, Subtask
from graph.state import SETTLED, USABLE, State, SubtaskRecord, Usage, add_usage, empty_usage
from graph.validator import current_records
from workers.registry import WorkerRegistry


def _over_budget(ctx: Context, spent: Usage) -> str | None:
    if (
        ctx.max_total_tokens
        and spent["input_tokens"] + spent["output_tokens"] >= ctx.max_total_tokens
    ):
        return f"token budget of {ctx.max_total_tokens} reached"
    if ctx.max_cost_usd and spent["cost_usd"] >= ctx.max_cost_usd:
        return f"cost budget of ${ctx.max_cost_usd:g} reached"
    return None


def _needs_run(sub: Subtask, rec: SubtaskRecord | None, state: State) -> bool:
    """Whether a subtask must (re)run in this round."""
    if rec is None:
        return True
    if rec["status"] in SETTLED:
        return False
    if rec["status"] == "failed":  # rerun only once the plan was revised
        return rec["plan_version"] < state.get("plan_version", 1)
    answer = (state.get("clarifications") or {}).get(sub.id)
    return answer is not None and answer != rec.get("clarification")


def make_dispatch(registry: WorkerRegistry) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Build the dispatch node for a worker registry."""

    @task(name="run_subtask")  # type: ignore[arg-type]  # mypy cannot solve its ParamSpec
    async def run_subtask(job: Job) -> SubtaskRecord:
        """One subtask from first attempt to verdict, checkpointed as one unit."""
        ctx = get_runtime(Context).context
        return await execute_subtask(job, registry, ctx)

    async def dispatch(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Run every subtask whose inputs are accepted, up to `max_parallel` at once."""
        ctx = runtime.context
        plan = Plan.model_validate(state["plan"])
        prints = fingerprints(plan)
        version = state.get("plan_version", 1)
        known = current_records(state, prints)
        todo = [s for s in plan.subtasks if _needs_run(s, known.get(s.id), state)]
        done: dict[str, SubtaskRecord] = {
            sid: r for sid, r in known.items() if sid not in {s.id for s in todo}
        }
        new: dict[str, SubtaskRecord] = {}
        spent = empty_usage()
        for u in (state.get("usage") or {}).values():
            spent = add_usage(spent, u)
        running: dict[asyncio.Future[SubtaskRecord], str] = {}
        stop_reason: str | None = None
        audit = [event("dispatch_round", plan_version=version, todo=[s.id for s in todo])]

        def ready(sub: Subtask) -> bool:
            return (
                sub.id not in new
                and sub.id not in running.values()
                and all(d in done and done[d]["status"] in USABLE for d in sub.inputs)
            )

        while True:
            stop_reason = stop_reason or _over_budget(ctx, spent)
            if stop_reason is None:
                for sub in todo:
                    if len(running) >= ctx.max_parallel:
                        break
                    if ready(sub):
                        job: Job = {
                            "subtask": sub.model_dump(mode="json"),
                            "dependencies": {
                                d: {
                                    "id": d,
                                    "worker": done[d]["worker"],
                                    "status": done[d]["status"],
                                    "text": done[d]["text"],
                                    "output": done[d]["output"],
                                }
                                for d in sub.inputs
                            },
                            "clarification": (state.get("clarifications") or {}).get(sub.id),
                            "fingerprint": prints[sub.id],
                            "plan_version": version,
                        }
                        emit("subtask", id=sub.id, status="running", worker=sub.worker)
                        audit.append(event("dispatch", sub.id, worker=sub.worker))
                        running[asyncio.ensure_future(run_subtask(job))] = sub.id  # type: ignore[arg-type]
            if not running:
                break
            finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for fut in finished:
                asked = running.pop(fut)
                rec = fut.result()
                owner = rec["id"]
                if owner != asked or rec["fingerprint"] != prints.get(asked):
                    # A replayed result of another call: attach it to its own subtask;
                    # `asked` is still not done and is dispatched again.
                    audit.append(event("replay_reordered", asked, attached_to=owner))
                    if prints.get(owner) != rec["fingerprint"] or owner in new:
                        continue
                new[owner] = done[owner] = rec
                spent = add_usage(spent, rec["usage"])
                emit(
                    "subtask",
                    id=owner,
                    status=rec["status"],
                    worker=rec["worker"],
                    attempts=len(rec["attempts"]),
                    seconds=round(sum(a["duration_s"] for a in rec["attempts"]), 3),
                )
                audit.append(
                    event("result", owner, status=rec["status"], attempts=len(rec["attempts"]))
                )
        if stop_reason:
            for sub in todo:
                if sub.id not in new:
                    new[sub.id] = _over_budget_record(sub, prints[sub.id], version, stop_reason)
            audit.append(event("budget_stop", reason=stop_reason))
        usage: dict[str, Usage] = {}
        for rec in new.values():
            for att in rec["attempts"]:
                for model, u in att["usage_by_model"].items():
                    usage[model] = add_usage(usage.get(model, empty_usage()), u)
        update: dict[str, Any] = {
            "results": new,
            "usage": usage,
            "audit": audit,
            "status": "over_budget" if stop_reason else "running",
        }
        return update

    return dispatch


def _over_budget_record(sub: Subtask, fingerprint: str, version: int, reason: str) -> SubtaskRecord:
    return {
        "id": sub.id,
        "fingerprint": fingerprint,
        "worker": sub.worker,
        "status": "over_budget",
        "text": "",
        "output": None,
        "question": None,
        "clarification": None,
        "error": f"not run: {reason}",
        "attempts": [],
        "usage": empty_usage(),
        "plan_version": version,
    }
