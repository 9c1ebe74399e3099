"""What `foreman show|rerun|delete|expire|gc` do, once a command runs.

Imported by those commands when they run (it brings LangGraph and the graph), not for
`foreman --help`.
"""

from __future__ import annotations

from typing import Any

from foreman import housekeeping
from foreman.cli.common import (
    open_app,
    remove_run_folder,
    require_run,
    resumed_context,
    say,
    thread_settings,
)
from foreman.cli.drive import stream_run
from foreman.errors import UsageError
from foreman.locks import thread_lock
from foreman.rerun import RerunError, find_base, fork_for_rerun


async def delete(db: str, thread_ids: list[str]) -> None:
    """Delete runs: checkpoints, stored outputs only they used, audit files."""
    async with open_app(db) as (app_graph, store):
        for tid in thread_ids:
            await require_run(app_graph, db, tid)
        for tid in thread_ids:
            async with thread_lock(db, tid):
                dropped = await housekeeping.delete_thread(app_graph.checkpointer, store, tid)
            files = ", its audit files" if remove_run_folder(tid) else ""
            say(f"deleted {tid} ({dropped} stored outputs no other thread used{files})")


async def expire(db: str, max_age_s: float, dry_run: bool) -> list[str]:
    """Delete (or with `dry_run` list) runs older than `max_age_s`."""
    async with open_app(db) as (app_graph, store):
        saver = app_graph.checkpointer
        if dry_run:
            return await housekeeping.old_threads(saver, max_age_s)
        gone = await housekeeping.expire_threads(saver, store, max_age_s)
        for tid in gone:
            remove_run_folder(tid)
        return gone


async def gc(db: str, grace_s: float, dry_run: bool) -> dict[str, int]:
    """Drop stored outputs of runs another saver deleted."""
    async with open_app(db) as (app_graph, store):
        saver = app_graph.checkpointer
        return await housekeeping.collect_garbage(saver, store, grace_s, dry_run)


async def values(db: str, thread: str) -> dict[str, Any]:
    """A run's whole history, with its stored outputs, for `show`."""
    async with open_app(db) as (app_graph, store):
        values = await housekeeping.full_values(app_graph, store, thread)
        if not values["checkpoints"]:
            raise UsageError(f"no run with thread id {thread!r} in {db}")
        return values


async def rerun(
    db: str,
    thread: str,
    subtask: str,
    checkpoint: str | None,
    models: list[str],
    opts: dict[str, Any],
) -> int:
    """Fork a run before synthesis and run one subtask (and its dependents) again."""
    async with open_app(db) as (app_graph, store), thread_lock(db, thread):
        await require_run(app_graph, db, thread)
        try:
            fork = await find_base(app_graph, thread, subtask, checkpoint)
        except RerunError as exc:
            raise UsageError(str(exc)) from exc
        ctx, changed = resumed_context(thread_settings(fork.base), {}, models)
        base_id = fork.base.config["configurable"]["checkpoint_id"]
        say(f"forking {thread} at checkpoint {base_id}; running again: {', '.join(fork.subtasks)}")
        if changed:
            say("with changed settings: " + "; ".join(changed))
        await fork_for_rerun(app_graph, fork, why=" ".join(models))
        return await stream_run(app_graph, store, thread, None, ctx, **opts)
