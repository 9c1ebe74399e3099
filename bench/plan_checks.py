"""How plan checks scale: `check_plan` on large valid plans, and on an oversized one.

Run from the repository root (a few seconds)::

    .venv/bin/python -m bench.plan_checks

A plan is checked before anything runs, for every planner answer and every edit a person
sends. The checks must stay linear in the plan's size (duplicate ids by counting, cycles by
one topological sort); a plan over `max_subtasks` is refused for its size alone. Writes
`bench/results/plan_checks.json` and prints the figures: milliseconds per check (median
of 5) for plans of 10,000, 20,000 and 40,000 subtasks, each subtask depending on the one
before and on the first, and the time to refuse a 10,000-subtask plan over a limit of 12.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from foreman.core.schemas import Plan
from foreman.orchestration.plan_validation import PlanError, check_plan

OUT = Path(__file__).resolve().parent / "results" / "plan_checks.json"
WORKERS = {"llm", "research", "writer"}
SIZES = (10_000, 20_000, 40_000)


def big_plan(n: int) -> Plan:
    """A valid plan of `n` subtasks: a chain, each also depending on the first."""
    subtasks = [
        {
            "id": f"s{i}",
            "worker": "llm",
            "objective": f"step {i}",
            "inputs": [f"s{i - 1}", "s0"] if i > 1 else ([f"s{i - 1}"] if i else []),
        }
        for i in range(n)
    ]
    return Plan.model_validate({"goal": "bench", "subtasks": subtasks})


def median_ms(plan: Plan, limit: int, repeats: int = 5) -> float:
    """Median wall time of `check_plan` in ms (a refusal counts as a finished check)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        try:
            check_plan(plan, WORKERS, limit)
        except PlanError:
            pass
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def main() -> None:
    """Measure, print and write the figures."""
    checked = {str(n): median_ms(big_plan(n), n) for n in SIZES}
    refused = median_ms(big_plan(SIZES[0]), 12)
    result = {
        "check_ms": checked,
        "growth_20k_over_10k": round(checked["20000"] / checked["10000"], 2),
        "growth_40k_over_20k": round(checked["40000"] / checked["20000"], 2),
        "refuse_oversized_10k_ms": refused,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for n, ms in checked.items():
        print(f"check_plan, {int(n):,} subtasks: {ms:.1f} ms")
    print(
        f"growth: x{result['growth_20k_over_10k']} for 2x the subtasks, "
        f"x{result['growth_40k_over_20k']} again (linear: about 2)"
    )
    print(f"refusing a 10,000-subtask plan over a limit of 12: {refused:.2f} ms")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
