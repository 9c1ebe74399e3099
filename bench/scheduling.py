"""The scheduling benchmark: wall time over critical path for one reference DAG.

Foreman runs the DAG through the real graph and is timed from its first `running` subtask
event to its last subtask result event; the bare baselines run the same DAG as `Send`
waves, sleeping or invoking the sim worker subgraph. Each ratio divides the median wall
time by the critical path (see `bench.run` for what the window includes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.bare_send import bare_graph, run_bare, task_span
from bench.foreman_runs import attempt_window, event_window, run_foreman
from bench.repeated_runs import interleaved, med
from bench.simulation import PLANS, Dag, bench_registry, dag_plan
from foreman.orchestration.plan_validation import critical_path
from foreman.workers.registry import WorkerRegistry


async def measure_dag(
    name: str, dag: Dag, unit: float, repeats: int, registry: WorkerRegistry, workdir: Path
) -> dict[str, Any]:
    """Critical-path ratios of one DAG: Foreman, bare Send waves (sleeping / sim worker)."""
    cp = critical_path(
        {k: v["latency"] for k, v in dag.items()}, {k: v["deps"] for k, v in dag.items()}
    )
    cp_s = cp * unit
    PLANS[name] = dag_plan(dag, unit)
    sim = bench_registry("subgraph")["sim"].graph  # baselines invoke the subgraph form

    async def foreman() -> dict[str, Any]:
        state, events, _ = await run_foreman(registry, name, len(dag), workdir)
        e0, e1 = event_window(events)
        a0, a1 = attempt_window(state)
        return {"wall_s": e1 - e0, "attempt_wall_s": a1 - a0}

    async def bare() -> dict[str, Any]:
        log: dict[str, Any] = {}
        await run_bare(bare_graph(dag, unit, log), dag, workdir)
        return {"wall_s": task_span(log)}

    async def bare_worker() -> dict[str, Any]:
        log: dict[str, Any] = {}
        await run_bare(bare_graph(dag, unit, log, worker=sim), dag, workdir)
        return {"wall_s": task_span(log)}

    r = await interleaved(repeats, {"f": foreman, "b": bare, "bw": bare_worker})
    f, b, bw = r["f"], r["b"], r["bw"]
    return {
        "tasks": len(dag),
        "critical_path_units": cp,
        "critical_path_s": round(cp_s, 4),
        "foreman_wall_s": round(med(f, "wall_s"), 4),
        "ratio": round(med(f, "wall_s") / cp_s, 4),
        "foreman_over_critical_path_ms": round((med(f, "wall_s") - cp_s) * 1000, 2),
        "attempt_window_ratio": round(med(f, "attempt_wall_s") / cp_s, 4),
        "foreman_runs_s": [round(x["wall_s"], 4) for x in f],
        "foreman_gc_full_ms": [round(x["gc_full_ms"], 1) for x in f],
        "bare_wall_s": round(med(b, "wall_s"), 4),
        "bare_ratio": round(med(b, "wall_s") / cp_s, 4),
        "bare_runs_s": [round(x["wall_s"], 4) for x in b],
        "bare_worker_subgraph_ratio": round(med(bw, "wall_s") / cp_s, 4),
    }
