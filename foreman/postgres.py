"""Foreman's PostgreSQL saver: imported only for a `postgresql://` database (postgres extra).

`foreman.checkpointers` imports it when a `--db` names PostgreSQL, after checking that the
extra is installed (`foreman.core.extras.require_postgres`), so SQLite users need neither
psycopg nor LangGraph's PostgreSQL checkpointer.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from foreman.core.text import without_nul
from foreman.savers import KeepsOutputsInStep


class PostgresSaver(KeepsOutputsInStep, AsyncPostgresSaver):
    """`AsyncPostgresSaver` that deletes and copies a thread's stored outputs with it.

    It also drops NUL characters from the string values it keeps inline in the checkpoint's
    JSON: PostgreSQL refuses them there, and one NUL in a request or a review's feedback
    made every later write of the thread fail (other values go to binary blobs, unharmed).
    """

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Save a checkpoint, its inline strings without NUL characters."""
        values = checkpoint["channel_values"]
        if any(isinstance(v, str) and "\x00" in v for v in values.values()):
            checkpoint = {**checkpoint, "channel_values": without_nul(values)}
        return await super().aput(config, checkpoint, metadata, new_versions)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints the runs saved, their writes and their own channel values.

        The server calls this for `multitask_strategy="rollback"`; a checkpoint's run is
        the `run_id` of its metadata. A channel value (blob) goes only if a deleted
        checkpoint named its version and no checkpoint left does: another run's values,
        saved meanwhile under newer versions, are never touched.
        """
        ids = [str(r) for r in run_ids]
        if not ids:
            return
        async with self._cursor() as cur:
            await cur.execute(_DELETE_RUN_CHECKPOINTS, (ids,))
            deleted = await cur.fetchall()
            freed = {
                (row["thread_id"], row["checkpoint_ns"], channel, str(version))
                for row in deleted
                for channel, version in (row["versions"] or {}).items()
            }
            if freed:
                columns = [list(col) for col in zip(*freed, strict=True)]
                await cur.execute(_DELETE_FREED_BLOBS, columns)


# The checkpoints and, in the same statement, their writes.
_DELETE_RUN_CHECKPOINTS = """
WITH deleted AS (
    DELETE FROM checkpoints WHERE metadata ->> 'run_id' = ANY(%s)
    RETURNING thread_id, checkpoint_ns, checkpoint_id, checkpoint -> 'channel_versions' AS versions
), writes AS (
    DELETE FROM checkpoint_writes w USING deleted d
    WHERE w.thread_id = d.thread_id AND w.checkpoint_ns = d.checkpoint_ns
    AND w.checkpoint_id = d.checkpoint_id
)
SELECT thread_id, checkpoint_ns, versions FROM deleted
"""
_DELETE_FREED_BLOBS = """
DELETE FROM checkpoint_blobs b
USING unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS f(thread_id, ns, channel, version)
WHERE b.thread_id = f.thread_id AND b.checkpoint_ns = f.ns
AND b.channel = f.channel AND b.version = f.version
AND NOT EXISTS (
    SELECT 1 FROM checkpoints c
    WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns
    AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version
)
"""
