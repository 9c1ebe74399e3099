"""Scheduling and overhead benchmarks: the real Foreman graph against bare LangGraph `Send`.

Run from the repository root with the project's virtualenv (about 1.5 minutes)::

    .venv/bin/python -m bench.run [--unit 0.1] [--repeats 3] [--n 1000]

Writes `bench/results/latest.json` and prints a table. Every measurement runs `--repeats`
times (default 3) and the median is reported. Foreman and its baselines run round-robin
(Foreman, bare, bare, ...) so machine noise hits them alike; each run gets a fresh SQLite
checkpointer (`AsyncSqliteSaver` on a new temp file), a fresh thread, and starts after a
`gc.collect()` so no run pays for the garbage of the one before. Full (generation-2)
garbage-collection time inside each run is recorded (`*_gc_full_ms`).

What is measured
================

1. ``critical_path_ratio``. Each reference DAG (`bench/dags.json`) runs
   through the real graph, ``build_graph(registry)``: a planner model registered with
   ``register_provider("bench", ...)`` answers the structured ``Plan`` call with the DAG
   (subtask id = task id, inputs = deps, worker ``sim``, the latency in the objective),
   and the ``sim`` worker's subgraph only ``await asyncio.sleep(latency * unit)``. The
   same provider answers the synthesizer's text call with a fixed report. Context:
   every role on ``bench:…``, ``max_parallel`` ≥ 64 (never binding), ``max_subtasks`` ≥
   the graph.

   Wall time is taken from the custom stream events Foreman emits: from the first
   ``{"foreman": "subtask", "status": "running"}`` (a task got its slot and is about to
   run the worker) to the last ``{"foreman": "subtask", "status": <verdict>}`` (emitted
   by the dispatch node once it has *received* a finished task's result, which is also
   the moment dependents are released). This window isolates scheduling: it excludes
   planning, plan parsing and synthesis, but includes everything between a dependency
   finishing and its dependents starting (task completion, the checkpoint write of the
   task result, the dispatch loop noticing it, semaphore, worker start) and the
   propagation of the final result back to the node. The window computed from the attempt
   records (`started_at` / `duration_s`) is reported as well (``attempt_window_ratio``);
   it omits that last propagation step, so it is at most slightly smaller.

   ratio = wall / critical path, critical path = ``critical_path(latency, deps) * unit``.

   For comparison the same DAG runs as bare LangGraph ``Send`` waves: a ``collect`` node
   routes every ready task (all deps done, not yet done) with ``Send("task", ...)``; a
   superstep ends when its slowest task ends. Wall = first task start to last task end,
   measured in the task nodes (``bare_send_wave_ratio``). The same waves with each task
   invoking the sim worker's subgraph (as Foreman's dispatch does) are reported as
   ``graphs.*.bare_worker_subgraph_ratio``.

2. ``overhead_ms_per_subtask``. ``--n`` (1000) independent zero-latency subtasks through
   the real graph (``max_parallel`` > n, ``max_subtasks`` ≥ n). The dispatch phase is
   measured node to node: from the end of the planner node (its ``plan`` audit event, the
   last thing it does) to the start of the validate node (its ``validation`` audit event,
   minus the validate node's own compute, which is timed separately on the final state
   and subtracted). So the window holds the plan→dispatch step boundary (checkpoint), the
   whole dispatch node (plan parsing, fingerprints, board set-up, n tasks, result
   collection, its state write) and the dispatch→validate boundary (checkpoint). The
   bare baseline is the same shape: ``collect`` → n ``Send`` no-op tasks (each
   ``await asyncio.sleep(0)``) → ``collect``, with the window from the end of the first
   ``collect`` to the start of the second. Both stream ``custom`` events as the CLI does.
   ``overhead_vs_bare_send`` = Foreman ms/subtask ÷ bare ms/subtask. For reference, the
   same window is measured for a ``Send`` fan-out whose nodes invoke the sim worker
   subgraph, and for one ``langgraph.func.task`` per subtask invoking it from a single
   node (Foreman's skeleton without Foreman's code); ``overhead.foreman_breakdown_*``
   splits Foreman's window at its ``dispatch_round`` audit event.

Flags for what-if runs (recorded in the JSON; the defaults are what the targets use):
``--gc-freeze`` (``gc.freeze()`` after imports), ``--worker-call subgraph`` (run the sim
worker as a one-node LangGraph subgraph instead of as a tool worker, ``WorkerSpec.tool``).
The default is the tool worker: a worker that only waits is a tool, not a model pipeline.

Targets: every ratio ≤ 1.05; overhead within 3× of bare ``Send``.

Where the code lives: ``bench.simulation`` (the DAGs as plans, the bench provider, the sim
worker), ``bench.foreman_runs`` (runs of the real graph and the windows read from them),
``bench.bare_send`` (the bare LangGraph baselines), ``bench.repeated_runs`` (interleaved
repeats with GC accounting), ``bench.scheduling`` and ``bench.overhead`` (the two
measurements) and ``bench.report`` (targets, table, JSON); this module is the CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.overhead import measure_overhead
from bench.report import OVERHEAD_TARGET, RATIO_TARGET, machine, table, write_result
from bench.scheduling import measure_dag
from bench.simulation import DAGS, BenchChatModel, Dag, bench_registry, load_dags
from foreman.core.models import register_provider, unregister_provider

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "results" / "latest.json"
GRAPHS = ("dag9", "two_chains", "report12", "fanout50")


async def main_async(args: argparse.Namespace, dags: dict[str, Dag]) -> dict[str, Any]:
    """Run every measurement and assemble the result."""
    registry = bench_registry(args.worker_call)
    register_provider("bench", lambda name: BenchChatModel(model_name=name or "x"))
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="foreman-bench-") as tmp:
            workdir = Path(tmp)
            (workdir / "no-corpus").mkdir()
            # Warm-up (imports, first compile, SQLite): not measured.
            await measure_dag("two_chains", dags["two_chains"], 0.001, 1, registry, workdir)
            graphs = {
                name: await measure_dag(
                    name, dags[name], args.unit, args.repeats, registry, workdir
                )
                for name in GRAPHS
            }
            overhead = await measure_overhead(args.n, args.repeats, registry, workdir)
    finally:
        unregister_provider("bench")
    return {
        "critical_path_ratio": {name: graphs[name]["ratio"] for name in GRAPHS},
        "overhead_ms_per_subtask": overhead["overhead_ms_per_subtask"],
        "overhead_vs_bare_send": overhead["overhead_vs_bare_send"],
        "bare_send_wave_ratio": {name: graphs[name]["bare_ratio"] for name in GRAPHS},
        "bare_send_overhead_ms_per_subtask": overhead["bare_send_overhead_ms_per_subtask"],
        "targets": {
            "critical_path_ratio_max": RATIO_TARGET,
            "overhead_vs_bare_send_max": OVERHEAD_TARGET,
        },
        "targets_met": {
            "critical_path_ratio": all(g["ratio"] <= RATIO_TARGET for g in graphs.values()),
            "overhead_vs_bare_send": overhead["overhead_vs_bare_send"] <= OVERHEAD_TARGET,
        },
        "unit_s": args.unit,
        "gc_freeze": args.gc_freeze,
        "sim_worker_call": args.worker_call,
        "repeats": args.repeats,
        "graphs": graphs,
        "overhead": overhead,
        "bench_seconds": round(time.perf_counter() - started, 1),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unit", type=float, default=0.1, help="seconds per latency unit")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement")
    parser.add_argument("--n", type=int, default=1000, help="subtasks in the overhead run")
    parser.add_argument("--dags", default=str(DAGS), help="reference DAGs (JSON)")
    parser.add_argument("--out", default=str(OUT), help="where to write the JSON result")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="what-if, not the default: gc.freeze() after imports, so full collections skip "
        "the import-time heap (what an app entry point could do)",
    )
    parser.add_argument(
        "--worker-call",
        choices=("tool", "subgraph"),
        default="tool",
        help="run the sim worker as a tool worker (default) or as a one-node subgraph",
    )
    args = parser.parse_args(argv)
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    dags = load_dags(args.dags)
    result = asyncio.run(main_async(args, dags))
    out = Path(args.out)
    write_result(result, out)
    print(table(result))
    print(f"\nwrote {out} ({result['bench_seconds']} s)")


if __name__ == "__main__":
    main()
