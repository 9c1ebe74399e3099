"""A worker defined outside Foreman, registered through $FOREMAN_WORKERS in tests."""

from __future__ import annotations

from typing import Any

from foreman.core.schemas import WorkerStatus
from foreman.workers.base import WorkerInput
from foreman.workers.registry import WorkerSpec


class Shout(WorkerStatus):
    text: str = ""


async def shout(inp: WorkerInput, ctx: Any) -> dict[str, Any]:
    return {"status": "done", "text": inp.subtask.objective.upper()}


def make() -> WorkerSpec:
    return WorkerSpec(
        name="shouter",
        capability="formatting",
        description="repeats its objective in capital letters",
        output_schema=Shout,
        check=lambda o, i, c: [],
        render=lambda o: str(o.get("text", "")),
        tool=shout,
    )
