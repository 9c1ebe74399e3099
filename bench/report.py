"""The benchmark's targets and its output: the printed table and the JSON result file.

`table` renders the result of `bench.run` as the summary printed at the end of a run,
marking each figure ok or MISS against `RATIO_TARGET` and `OVERHEAD_TARGET`; `machine`
records where the figures come from; `write_result` writes the result as indented JSON.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

RATIO_TARGET = 1.05
OVERHEAD_TARGET = 3.0


def machine() -> dict[str, Any]:
    """Where the figures come from."""
    from importlib.metadata import version

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "langgraph": version("langgraph"),
        "langgraph-checkpoint-sqlite": version("langgraph-checkpoint-sqlite"),
        "aiosqlite": version("aiosqlite"),
    }


def table(result: dict[str, Any]) -> str:
    """A readable summary."""
    lines = [
        f"Foreman scheduling benchmark  (unit = {result['unit_s']} s, median of "
        f"{result['repeats']} runs, SQLite checkpointer, sim worker called as "
        f"{result['sim_worker_call']}{', gc frozen' if result['gc_freeze'] else ''})",
        "",
        f"{'graph':<11} {'tasks':>5} {'crit.path s':>11} {'foreman s':>9} {'ratio':>7} "
        f"{'(attempts)':>10} {'bare Send s':>11} {'bare ratio':>10} {'(+worker)':>9}"
        f"  target ≤ {RATIO_TARGET}",
    ]
    for name, d in result["graphs"].items():
        ok = "ok" if d["ratio"] <= RATIO_TARGET else "MISS"
        lines.append(
            f"{name:<11} {d['tasks']:>5} {d['critical_path_s']:>11.3f} {d['foreman_wall_s']:>9.3f} "
            f"{d['ratio']:>7.3f} {d['attempt_window_ratio']:>10.3f} {d['bare_wall_s']:>11.3f} "
            f"{d['bare_ratio']:>10.3f} {d['bare_worker_subgraph_ratio']:>9.3f}  {ok}"
        )
    o = result["overhead"]
    base = o["baselines_ms_per_subtask"]
    ok = "ok" if o["overhead_vs_bare_send"] <= OVERHEAD_TARGET else "MISS"
    lines += [
        "",
        f"Overhead: {o['subtasks']} independent zero-latency subtasks, dispatch phase node to "
        "node, ms/subtask",
        f"  Foreman                                   {o['overhead_ms_per_subtask']:>7.3f}",
        f"  bare Send, no-op nodes                    {base['send_noop']:>7.3f}",
        f"  Foreman / bare Send                       {o['overhead_vs_bare_send']:>7.2f} x"
        f"   target ≤ {OVERHEAD_TARGET}  {ok}",
        "  for reference (same window, same checkpointer):",
        f"  bare Send, nodes invoke the sim worker    "
        f"{base['send_invoking_sim_worker_subgraph']:>7.3f}",
        "  one langgraph task per subtask invoking",
        f"    the sim worker (no Foreman code)        "
        f"{base['langgraph_task_per_subtask_invoking_sim_worker_subgraph']:>7.3f}",
        f"  Foreman / Send-invoking-worker            "
        f"{o['overhead_vs_send_invoking_worker_subgraph']:>7.2f} x",
        f"  full-GC pauses per Foreman run (ms): {o['foreman_gc_full_ms']}",
    ]
    return "\n".join(lines)


def write_result(result: dict[str, Any], out: Path) -> None:
    """Write the result as indented JSON, creating the folder if needed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
