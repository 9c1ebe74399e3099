"""Runs of the real Foreman graph for the benchmarks, and the timestamps read back from them.

`run_foreman` runs `build_graph(registry)` once on a fresh SQLite checkpointer with every
role on the bench provider and collects the custom stream events; the helpers below read
the measurement windows from those events, the attempt records and the audit trail, and
time the validate node's own compute so it can be subtracted from a window.
"""

from __future__ import annotations

import statistics
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from bench.simulation import PLANS
from foreman import Context, build_graph
from foreman.orchestration.validator import validate
from foreman.workers.registry import WorkerRegistry


def bench_context(plan_key: str, n: int, corpus: str) -> Context:
    """Context for a bench run: every role on the bench provider, no practical limits."""
    return Context(
        planner_model=f"bench:{plan_key}",
        worker_model="bench:x",
        validator_model="bench:x",
        synthesizer_model="bench:x",
        max_parallel=max(64, n + 1),
        max_subtasks=max(1000, n) + 8,
        corpus_dir=corpus,  # an empty folder: synthesis skips loading the BM25 corpus
    )


async def run_foreman(
    registry: WorkerRegistry, plan_key: str, n: int, workdir: Path
) -> tuple[dict[str, Any], list[dict[str, Any]], Context]:
    """One run of the real graph on a fresh SQLite file; returns final state and events."""
    ctx = bench_context(plan_key, n, str(workdir / "no-corpus"))
    db = workdir / f"{uuid.uuid4().hex}.sqlite"
    events: list[dict[str, Any]] = []
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        await saver.setup()
        app = build_graph(registry).compile(checkpointer=saver)
        config: Any = {"configurable": {"thread_id": uuid.uuid4().hex}}
        async for chunk in app.astream(
            {"request": f"benchmark {plan_key}"}, config, context=ctx, stream_mode="custom"
        ):
            if isinstance(chunk, dict) and "foreman" in chunk:
                events.append(chunk)
        state = (await app.aget_state(config)).values
    db.unlink(missing_ok=True)
    if state.get("status") != "done":
        raise RuntimeError(f"{plan_key}: run ended {state.get('status')}: {state.get('error')}")
    bad = [sid for sid, r in state["results"].items() if r["status"] != "accepted"]
    if bad or len(state["results"]) != len(PLANS[plan_key]["subtasks"]):
        raise RuntimeError(f"{plan_key}: subtasks not accepted: {bad[:5]}")
    return state, events, ctx


def event_window(events: list[dict[str, Any]]) -> tuple[float, float]:
    """First `running` subtask event and last subtask result event (Unix seconds)."""
    subtask = [e for e in events if e["foreman"] == "subtask"]
    starts = [e["at"] for e in subtask if e["status"] == "running"]
    ends = [e["at"] for e in subtask if e["status"] != "running"]
    return min(starts), max(ends)


def attempt_window(state: dict[str, Any]) -> tuple[float, float]:
    """First attempt start and last attempt end from the records (Unix seconds)."""
    atts = [a for r in state["results"].values() for a in r["attempts"]]
    return min(a["started_at"] for a in atts), max(a["started_at"] + a["duration_s"] for a in atts)


def audit_at(state: dict[str, Any], kind: str) -> float:
    """Time of the first audit event of a kind."""
    return next(e["at"] for e in state["audit"] if e["kind"] == kind)


def validate_compute_s(state: dict[str, Any], ctx: Context, repeats: int = 5) -> float:
    """Median compute time of the validate node on this state (subtracted from windows)."""
    runtime: Any = SimpleNamespace(context=ctx)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        validate(state, runtime)  # type: ignore[arg-type]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
