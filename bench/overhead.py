"""The overhead benchmark: dispatch-phase cost per subtask for n independent subtasks.

n zero-latency subtasks go through the real graph, timed node to node from the end of the
planner node to the start of the validate node (minus the validate node's own compute);
the bare baselines time the same window between two `collect` nodes around a `Send`
fan-out of no-op tasks, of tasks invoking the sim worker subgraph, and of one
`langgraph.func.task` per subtask (see `bench.run` for the details).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.bare_send import bare_graph, run_bare, task_floor_graph, task_span
from bench.foreman_runs import audit_at, event_window, run_foreman, validate_compute_s
from bench.repeated_runs import interleaved, med
from bench.simulation import PLANS, Dag, bench_registry, dag_plan
from foreman.workers.registry import WorkerRegistry


async def measure_overhead(
    n: int, repeats: int, registry: WorkerRegistry, workdir: Path
) -> dict[str, Any]:
    """Dispatch-phase cost per subtask for n independent zero-latency subtasks."""
    dag: Dag = {f"t{i:04d}": {"latency": 0.0, "deps": []} for i in range(n)}
    key = f"flat{n}"
    PLANS[key] = dag_plan(dag, 0.0)
    sim = bench_registry("subgraph")["sim"].graph  # baselines invoke the subgraph form

    def window(log: dict[str, Any]) -> float:
        (_, first_end), (second_start, _) = log["collect"][0], log["collect"][1]
        return second_start - first_end

    async def foreman() -> dict[str, Any]:
        state, events, ctx = await run_foreman(registry, key, n, workdir)
        v = validate_compute_s(state, ctx)
        node = audit_at(state, "validation") - v - audit_at(state, "plan")
        _, last = event_window(events)
        return {
            "node_s": node,
            "task_s": last - audit_at(state, "dispatch_round"),
            "prep_s": audit_at(state, "dispatch_round") - audit_at(state, "plan"),
            "validate_s": v,
        }

    async def bare() -> dict[str, Any]:
        log: dict[str, Any] = {}
        await run_bare(bare_graph(dag, 0.0, log), dag, workdir)
        return {"node_s": window(log), "task_s": task_span(log)}

    async def bare_worker() -> dict[str, Any]:
        log: dict[str, Any] = {}
        await run_bare(bare_graph(dag, 0.0, log, worker=sim), dag, workdir)
        return {"node_s": window(log)}

    async def task_floor() -> dict[str, Any]:
        log: dict[str, Any] = {}
        await run_bare(task_floor_graph(dag, log, sim), dag, workdir)
        return {"node_s": window(log)}

    r = await interleaved(repeats, {"f": foreman, "b": bare, "bw": bare_worker, "tf": task_floor})
    f, b = r["f"], r["b"]

    def per(runs: list[dict[str, Any]], key: str = "node_s") -> float:
        return round(med(runs, key) * 1000 / n, 4)

    f_ms, b_ms = per(f), per(b)
    return {
        "subtasks": n,
        "overhead_ms_per_subtask": f_ms,
        "bare_send_overhead_ms_per_subtask": b_ms,
        "overhead_vs_bare_send": round(f_ms / b_ms, 3),
        "foreman_runs_s": [round(x["node_s"], 4) for x in f],
        "bare_runs_s": [round(x["node_s"], 4) for x in b],
        "foreman_gc_full_ms": [round(x["gc_full_ms"], 1) for x in f],
        "bare_gc_full_ms": [round(x["gc_full_ms"], 1) for x in b],
        "foreman_breakdown_ms_per_subtask": {
            "before_first_task (plan->dispatch boundary, plan parse, board setup)": per(
                f, "prep_s"
            ),
            "tasks (dispatch_round event -> last result event)": per(f, "task_s"),
        },
        "validate_compute_ms_subtracted": round(med(f, "validate_s") * 1000, 3),
        "baselines_ms_per_subtask": {
            "send_noop": b_ms,
            "send_invoking_sim_worker_subgraph": per(r["bw"]),
            "langgraph_task_per_subtask_invoking_sim_worker_subgraph": per(r["tf"]),
        },
        "overhead_vs_send_invoking_worker_subgraph": round(f_ms / per(r["bw"]), 3),
        "baselines_gc_full_ms_median": {
            "send_noop": round(med(b, "gc_full_ms"), 1),
            "send_invoking_sim_worker_subgraph": round(med(r["bw"], "gc_full_ms"), 1),
            "langgraph_task_per_subtask_invoking_sim_worker_subgraph": round(
                med(r["tf"], "gc_full_ms"), 1
            ),
        },
    }
