"""Time travel: fork a thread at a past checkpoint, run one subtask again, re-synthesize.

The fork is LangGraph's own: `aupdate_state` on a past checkpoint writes a new checkpoint
whose parent is that one, so the original branch stays in the thread's history. The update
marks the subtask (and every subtask that consumed its output, directly or not) `rerun` and
routes to dispatch; everything else keeps its accepted result, so siblings never run again.
A different model for the rerun comes from the `Context` passed in.

The same works against a LangGraph server: `client.threads.update_state(thread_id, values,
as_node="validate", checkpoint_id=...)`, then a run with `input=None` on the thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langgraph.pregel import Pregel
from langgraph.types import StateSnapshot

from foreman.core.schemas import Plan
from foreman.core.state import SubtaskRecord
from foreman.orchestration.audit import event
from foreman.orchestration.plan_validation import fingerprints
from foreman.orchestration.records import current_records


class RerunError(ValueError):
    """The subtask or checkpoint asked for cannot be rerun; the message says why."""


@dataclass
class Fork:
    """Where a rerun starts: the checkpoint it forks and what it marks for rerun."""

    base: StateSnapshot
    subtasks: list[str]
    """The subtask asked for, then its dependents (they consumed its output)."""
    records: dict[str, SubtaskRecord]
    """Their records at `base`, to be marked `rerun`."""


def dependents(plan: Plan, subtask: str) -> list[str]:
    """Every subtask that depends on `subtask`, directly or through others, in plan order."""
    found = {subtask}
    changed = True
    while changed:
        changed = False
        for s in plan.subtasks:
            if s.id not in found and found & set(s.inputs):
                found.add(s.id)
                changed = True
    return [s.id for s in plan.subtasks if s.id in found and s.id != subtask]


async def find_base(
    app: Pregel, thread_id: str, subtask: str, checkpoint_id: str | None = None
) -> Fork:
    """The checkpoint to fork: the one given, else the latest that is about to synthesize.

    A run that never reached synthesis (paused at a question, stopped by a provider) forks
    at its latest checkpoint.
    """
    config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    snap: StateSnapshot | None = None
    if checkpoint_id:
        # with the namespace: the savers' `aput` needs it in the config the fork writes from
        config["configurable"]["checkpoint_id"] = checkpoint_id
        snap = await app.aget_state(config)
        if not snap.values:
            raise RerunError(f"no checkpoint {checkpoint_id!r} in thread {thread_id!r}")
    else:
        async for candidate in app.aget_state_history(config):
            if "synthesize" in candidate.next:
                snap = candidate
                break
            if candidate.next or candidate.tasks:
                snap = candidate  # the head of a run that has not finished: paused, stopped
                break
    if snap is None:
        raise RerunError(
            f"thread {thread_id!r} has no checkpoint before synthesis; give --checkpoint, "
            "or let the run reach synthesis first"
        )
    values = snap.values
    if not values.get("plan"):
        raise RerunError(f"checkpoint {snap.config['configurable']['checkpoint_id']} has no plan")
    plan = Plan.model_validate(values["plan"])
    records = current_records(values, fingerprints(plan))  # type: ignore[arg-type]
    if subtask not in {s.id for s in plan.subtasks}:
        raise RerunError(
            f"no subtask {subtask!r} in plan v{values.get('plan_version', 1)}; it has: "
            + ", ".join(s.id for s in plan.subtasks)
        )
    if subtask not in records:
        raise RerunError(f"subtask {subtask!r} has not run at this checkpoint; nothing to rerun")
    again = [subtask, *(sid for sid in dependents(plan, subtask) if sid in records)]
    return Fork(base=snap, subtasks=again, records={sid: records[sid] for sid in again})


async def fork_for_rerun(app: Pregel, fork: Fork, why: str = "") -> Any:
    """Write the forking checkpoint; return its config, to run from with `input=None`."""
    marked: dict[str, SubtaskRecord] = {
        sid: {**rec, "status": "rerun", "error": None} for sid, rec in fork.records.items()
    }
    base_id = fork.base.config["configurable"]["checkpoint_id"]
    return await app.aupdate_state(
        fork.base.config,
        {
            "results": marked,
            "next_step": "dispatch",
            "status": "running",
            "error": None,
            "audit": [
                event(
                    "rerun",
                    fork.subtasks[0],
                    from_checkpoint=base_id,
                    subtasks=fork.subtasks,
                    why=why,
                )
            ],
        },
        as_node="validate",
    )
