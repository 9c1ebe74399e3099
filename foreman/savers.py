"""LangGraph's SQLite and PostgreSQL savers, made aware of the outputs kept in the store.

A thread's large worker outputs live in the LangGraph store (`graph/outputs.py`), registered to
the thread that stored them. The LangGraph server deletes and copies threads through the
checkpointer alone (`adelete_thread`, `acopy_thread`), so with the stock savers a deletion
left the outputs behind and a copy did not register its use of them: deleting the original
afterwards dropped outputs the copy still needed. These savers, given the store
(`outputs_store`), keep the registrations in step: deleting a thread forgets its uses
(dropping outputs nobody else uses, and the cached results it made), and copying a thread
registers the copy's uses. They also implement what the stock savers lack and the server
calls: `adelete_for_runs` (its `multitask_strategy="rollback"`) on both, and `aprune`
(thread TTL, `/threads/prune`) on SQLite; a pruned-away thread forgets its outputs on both.

The PostgreSQL saver is in `foreman.postgres`, imported only for a PostgreSQL database (the
postgres extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.store.base import BaseStore

from foreman.core.text import nesting_depth
from foreman.orchestration import result_cache
from foreman.orchestration.outputs import forget_thread, share_uses


async def copy_checkpoints(saver: BaseCheckpointSaver, source: str, target: str) -> None:
    """Copy every checkpoint and pending write of `source` to `target`, ids and parents kept.

    The same replay the LangGraph server falls back to for a saver without `acopy_thread`;
    defined here so the copy and the registration of its outputs happen in one call.
    """
    copies = [cp async for cp in saver.alist({"configurable": {"thread_id": source}})]
    copies.sort(key=lambda cp: cp.config["configurable"]["checkpoint_id"])  # parents first
    for cp in copies:
        conf: dict[str, Any] = {
            "thread_id": target,
            "checkpoint_ns": cp.config["configurable"].get("checkpoint_ns", ""),
        }
        parent = (cp.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        if parent is not None:
            conf["checkpoint_id"] = parent
        metadata = dict(cp.metadata)
        if "thread_id" in metadata:
            metadata["thread_id"] = target
        saved = await saver.aput(
            {"configurable": conf},
            cp.checkpoint,
            metadata,  # type: ignore[arg-type]
            cp.checkpoint.get("channel_versions", {}),
        )
        by_task: dict[str, list[tuple[str, Any]]] = {}
        for task_id, channel, value in cp.pending_writes or []:
            by_task.setdefault(task_id, []).append((channel, value))
        for task_id, writes in by_task.items():
            await saver.aput_writes(saved, writes, task_id)


# LangGraph's channel for the answers given to interrupts (`Command(resume=...)`).
RESUME = "__resume__"
MAX_ANSWER_DEPTH = 100


def storable_answer(value: Any) -> Any:
    """An answer to an interrupt as it can be kept.

    One nested too deeply to serialize (the serializer raises, failing the resume) is kept
    as a note instead, which the node does not understand and so asks again.
    """
    if nesting_depth(value, MAX_ANSWER_DEPTH + 1) > MAX_ANSWER_DEPTH:
        return {"not_kept": f"the answer nested more than {MAX_ANSWER_DEPTH} levels deep"}
    return value


class KeepsOutputsInStep(BaseCheckpointSaver):
    """Mixin for a saver: deleting, copying or pruning a thread does the same to its outputs.

    Put it before the saver class (`class S(KeepsOutputsInStep, AsyncSqliteSaver)`), so
    `super()` reaches that saver's own methods. It also keeps unserializable answers to
    interrupts from failing a resume (`storable_answer`).
    """

    outputs_store: BaseStore | None = None

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes; answers to interrupts as `storable_answer` keeps them."""
        if any(channel == RESUME for channel, _ in writes):
            writes = [(c, storable_answer(v) if c == RESUME else v) for c, v in writes]
        await super().aput_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete the thread's checkpoints, then its uses of stored outputs."""
        await super().adelete_thread(thread_id)
        if self.outputs_store is not None:
            await forget_thread(self.outputs_store, thread_id)
            await result_cache.forget_thread(self.outputs_store, thread_id)  # hold its outputs

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy the thread's checkpoints, then register the copy as a user of its outputs."""
        await copy_checkpoints(self, source_thread_id, target_thread_id)
        if self.outputs_store is not None:
            await share_uses(self.outputs_store, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune the threads (the server's thread TTL); deleted ones forget their outputs.

        `keep_latest` keeps each thread's latest checkpoint, which still refers to its
        outputs, so their registrations stay until the thread itself goes.
        """
        await super().aprune(thread_ids, strategy=strategy)
        if strategy == "delete" and self.outputs_store is not None:
            for thread_id in thread_ids:
                await forget_thread(self.outputs_store, str(thread_id))
                await result_cache.forget_thread(self.outputs_store, str(thread_id))


class SqlitePruning(AsyncSqliteSaver):
    """`aprune` for the SQLite saver, which LangGraph's lacks (PostgreSQL's has one)."""

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Delete the threads, or keep only their latest checkpoints (`keep_latest`).

        `keep_latest` keeps each namespace's latest checkpoint with its pending writes (a
        paused run still resumes) and drops the rest. A SQLite checkpoint holds its whole
        state, and LangGraph 1.x checkpoints (format 4) their pending sends, so nothing
        else needs keeping. Foreman's workers keep no checkpoints of their own, so there
        are no subgraph namespaces whose starting point would have to stay.
        """
        if isinstance(thread_ids, str):
            raise TypeError("thread_ids must be a sequence of thread IDs, not a str")
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"Unknown prune strategy: {strategy!r}")
        ids = [str(t) for t in thread_ids]
        if strategy == "delete":
            for thread_id in ids:
                await super().adelete_thread(thread_id)  # AsyncSqliteSaver's own
            return
        async with self.lock, self.conn.cursor() as cur:
            for thread_id in ids:
                for sql in _KEEP_LATEST:
                    await cur.execute(sql, (thread_id,))
            await self.conn.commit()


# Every row of a (thread, namespace) but the latest checkpoint's goes; the latest loses its
# parent, which is gone.
_LATEST = (
    "SELECT MAX(c2.checkpoint_id) FROM checkpoints c2 "
    "WHERE c2.thread_id = {t}.thread_id AND c2.checkpoint_ns = {t}.checkpoint_ns"
)
_KEEP_LATEST = (
    f"DELETE FROM writes WHERE thread_id = ? AND checkpoint_id <> ({_LATEST.format(t='writes')})",
    "DELETE FROM checkpoints WHERE thread_id = ? "
    f"AND checkpoint_id <> ({_LATEST.format(t='checkpoints')})",
    "UPDATE checkpoints SET parent_checkpoint_id = NULL WHERE thread_id = ?",
)


class SqliteSaver(KeepsOutputsInStep, SqlitePruning):
    """`AsyncSqliteSaver` that deletes and copies a thread's stored outputs with it."""

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints the runs saved and their writes (a rolled-back run).

        The server calls this for `multitask_strategy="rollback"`; a checkpoint's run is
        the `run_id` of its metadata.
        """
        ids = [str(r) for r in run_ids]
        if not ids:
            return
        marks = ", ".join("?" * len(ids))
        chosen = f"json_extract(CAST(metadata AS TEXT), '$.run_id') IN ({marks})"
        async with self.lock, self.conn.cursor() as cur:
            await cur.execute(
                "DELETE FROM writes WHERE (thread_id, checkpoint_ns, checkpoint_id) IN "
                f"(SELECT thread_id, checkpoint_ns, checkpoint_id FROM checkpoints WHERE {chosen})",
                ids,
            )
            await cur.execute(f"DELETE FROM checkpoints WHERE {chosen}", ids)
            await self.conn.commit()
