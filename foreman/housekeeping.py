"""Thread housekeeping on either backend: list, export, delete, expire by age, collect garbage."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore, GetOp
from langgraph.types import StateSnapshot

from foreman.listing import thread_ids
from foreman.orchestration import result_cache
from foreman.orchestration.outputs import (
    OUTPUTS,
    forget_thread,
    last_registration,
    load_all,
    registered_keys,
    registered_threads,
)


def _config(thread_id: str) -> Any:
    return {"configurable": {"thread_id": thread_id}}


async def last_update(saver: BaseCheckpointSaver, thread_id: str) -> float | None:
    """Unix time of a thread's latest checkpoint, or None if it has none."""
    found = await saver.aget_tuple(_config(thread_id))
    return None if found is None else datetime.fromisoformat(found.checkpoint["ts"]).timestamp()


def thread_status(snap: StateSnapshot) -> str:
    """A thread's status as a person reads it: done, paused for a question, stopped, ..."""
    if snap.interrupts:
        kinds = ", ".join(dict.fromkeys(i.value.get("kind", "?") for i in snap.interrupts))
        return f"paused, waiting: {kinds}"
    if snap.tasks:  # `tasks`, not `next`: it keeps tasks whose writes were saved
        return f"stopped at {', '.join(t.name for t in snap.tasks)} (resumable)"
    return str(snap.values.get("status", "?"))


async def delete_thread(saver: BaseCheckpointSaver, store: BaseStore, thread_id: str) -> int:
    """Delete a thread's checkpoints and the stored outputs only it used; return those."""
    keys = await registered_keys(store, thread_id)
    await saver.adelete_thread(thread_id)  # Foreman's savers forget the uses themselves
    await forget_thread(store, thread_id)
    await result_cache.forget_thread(store, thread_id)  # its cached results hold its outputs
    left = await store.abatch([GetOp(OUTPUTS, key) for key in keys])
    return sum(item is None for item in left)


async def old_threads(
    saver: BaseCheckpointSaver, max_age_s: float, now: float | None = None
) -> list[str]:
    """Threads whose latest checkpoint is older than `max_age_s`."""
    cutoff = (now if now is not None else time.time()) - max_age_s
    old = []
    for tid in await thread_ids(saver):
        updated = await last_update(saver, tid)
        if updated is not None and updated < cutoff:
            old.append(tid)
    return old


async def expire_threads(
    saver: BaseCheckpointSaver, store: BaseStore, max_age_s: float, now: float | None = None
) -> list[str]:
    """Delete every thread whose latest checkpoint is older than `max_age_s`; return them."""
    expired = await old_threads(saver, max_age_s, now)
    for tid in expired:
        await delete_thread(saver, store, tid)
    return expired


async def collect_garbage(
    saver: BaseCheckpointSaver,
    store: BaseStore,
    grace_s: float = 86400.0,
    dry_run: bool = False,
    now: float | None = None,
) -> dict[str, int]:
    """Drop the stored-output uses of threads that were deleted without `foreman delete`.

    A server whose saver does not know the store (Aegra's, or stock LangGraph savers)
    deletes a thread's checkpoints only; its outputs stay in the store, registered to a
    thread that is gone (Foreman's savers forget them as they delete: `foreman.savers`).
    A thread qualifies when it has no checkpoint and stored nothing for `grace_s`: a run
    with `durability="exit"` stores outputs before its first checkpoint, and must not lose
    them while it runs.

    Returns those threads, each with how many outputs went with it (0: still used by
    another thread; with `dry_run` nothing is dropped and every count is 0).
    """
    cutoff = (now if now is not None else time.time()) - grace_s
    gone = {}
    for tid in await registered_threads(store):
        if await saver.aget_tuple(_config(tid)) is not None:
            continue
        stored = await last_registration(store, tid)
        if stored is not None and stored < cutoff:
            gone[tid] = 0 if dry_run else await forget_thread(store, tid)
    return gone


async def full_values(app: Pregel, store: BaseStore, thread_id: str) -> dict[str, Any]:
    """A thread's latest state with every stored output back in place, for export."""
    snap = await app.aget_state(_config(thread_id))
    values = dict(snap.values)
    if snap.values:
        values["status"] = thread_status(snap)
    if values.get("results"):
        values["results"] = await load_all(values["results"], store)
    values["checkpoints"] = [
        {
            "checkpoint_id": s.config["configurable"]["checkpoint_id"],
            "parent": (s.parent_config or {}).get("configurable", {}).get("checkpoint_id"),
            "at": s.created_at,
            "step": (s.metadata or {}).get("step"),
            "source": (s.metadata or {}).get("source"),
            "next": list(s.next),
        }
        async for s in app.aget_state_history(_config(thread_id))
    ]
    return values
