"""A trace reads like the plan: each subtask attempt is a named, tagged run with its metadata.

What LangSmith would show, collected in memory by a LangChain tracer passed as a callback:
no LangSmith client, no network (`LANGSMITH_TRACING=false`, and pytest-socket).
"""

from __future__ import annotations

import os
from typing import Any
from uuid import UUID

from langchain_core.tracers.base import BaseTracer
from langchain_core.tracers.schemas import Run

from foreman import Context
from foreman.examples import EXAMPLES
from tests.conftest import HEAT_PUMPS, scripted_context


class Runs(BaseTracer):
    """Every run of a graph run, kept in memory in the order they end."""

    def __init__(self) -> None:
        super().__init__()
        self.ended: list[Run] = []

    def _persist_run(self, run: Run) -> None:
        """Nothing leaves the process."""

    def _end_trace(self, run: Run) -> None:
        self.ended.append(run)
        super()._end_trace(run)

    def named(self, name: str) -> list[Run]:
        return [r for r in self.ended if r.name == name]

    def one(self, name: str) -> Run:
        [run] = self.named(name)
        return run

    def parent_of(self, run: Run) -> Run:
        by_id: dict[UUID, Run] = {r.id: r for r in self.ended}
        assert run.parent_run_id is not None
        return by_id[run.parent_run_id]

    def ancestors(self, run: Run) -> list[Run]:
        out = []
        while run.parent_run_id is not None:
            run = self.parent_of(run)
            out.append(run)
        return out


async def traced(app: Any, thread: dict[str, Any], given: dict[str, Any], ctx: Context) -> Runs:
    runs = Runs()
    await app.ainvoke(given, {**thread, "callbacks": [runs]}, context=ctx)
    return runs


def ours(run: Run) -> dict[str, Any]:
    """A run's metadata without LangGraph's and LangSmith's own keys."""
    skip = ("langgraph_", "checkpoint_", "ls_", "lc_", "__", "thread_id")
    return {k: v for k, v in (run.metadata or {}).items() if not k.startswith(skip)}


async def test_each_subtask_attempt_is_a_named_run(app: Any, thread: dict[str, Any]) -> None:
    assert os.environ["LANGSMITH_TRACING"] == "false"
    runs = await traced(app, thread, {"request": HEAT_PUMPS}, Context(judge=True))
    plan = app.get_state(thread).values["plan"]
    assert len(plan["subtasks"]) == 5
    for sub in plan["subtasks"]:
        sid, worker = sub["id"], sub["worker"]
        attempt = runs.one(f"{sid} · {worker} · attempt 1")
        assert {"foreman:subtask", f"worker:{worker}"} <= set(attempt.tags or [])
        assert ours(attempt) == {
            "subtask_id": sid,
            "worker": worker,
            "attempt": 1,
            "plan_version": 1,
            "model": "offline",
        }
        assert runs.parent_of(attempt).name == "run_subtask"
        # the worker's own model call runs inside the attempt, and carries its metadata
        [call] = [
            r
            for r in runs.ended
            if r.name.startswith(f"{worker} worker · ") and ours(r)["subtask_id"] == sid
        ]
        assert attempt in runs.ancestors(call) and ours(call)["attempt"] == 1
        assert "foreman:structured" in (call.tags or [])
        judge = runs.one(f"{sid} · judge · attempt 1")
        assert {"foreman:judge", "foreman:structured"} <= set(judge.tags or [])
        assert ours(judge) == {
            "subtask_id": sid,
            "worker": worker,
            "attempt": 1,
            "foreman_role": "judge",
            "model": "offline",
            "schema": "Verdict",
        }
    planner = runs.one("planner · plan v1 · attempt 1")
    assert {"foreman:planner", "foreman:structured"} <= set(planner.tags or [])
    assert ours(planner)["plan_version"] == 1 and ours(planner)["schema"] == "Plan"
    answer = runs.one("synthesizer · answer")
    assert "foreman:answer" in (answer.tags or []) and answer.run_type == "llm"
    assert ours(answer)["results"] == ["w1", "w2", "summary"]


async def test_a_retry_is_attempt_2_of_the_same_subtask(
    models: Any, app: Any, thread: dict[str, Any]
) -> None:
    failed = {"status": "failed", "error": "the index was busy", "findings": []}
    models["worker"].on("ResearchFindings", "running costs", failed, times=1)
    runs = await traced(app, thread, {"request": HEAT_PUMPS}, scripted_context())
    rec = next(
        r for r in app.get_state(thread).values["results"].values() if len(r["attempts"]) == 2
    )
    first = runs.one(f"{rec['id']} · research · attempt 1")
    second = runs.one(f"{rec['id']} · research · attempt 2")
    assert ours(first)["attempt"] == 1 and ours(second)["attempt"] == 2
    assert ours(second)["model"] == "scripted:worker"
    assert first.end_time is not None and second.start_time >= first.end_time


async def test_a_tool_worker_is_traced_too(app: Any, thread: dict[str, Any], shop_db: str) -> None:
    example = EXAMPLES["support"]
    given = {"request": example.request, "sender": example.sender}
    runs = await traced(app, thread, given, Context(support_db=shop_db))
    lookups = [
        s for s in app.get_state(thread).values["plan"]["subtasks"] if s["worker"] == "lookup"
    ]
    assert lookups
    for sub in lookups:
        run = runs.one(f"{sub['id']} · lookup · attempt 1")
        assert "worker:lookup" in (run.tags or []) and ours(run)["worker"] == "lookup"
