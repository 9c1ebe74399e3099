"""Honest answers and right-sized orchestration, over the request set in tests/.

Run from the repository root (about half a minute)::

    .venv/bin/python -m bench.honesty

Every request of `tests/data/requests.json` (42: multi-part reports, on-topic questions,
off-topic and trivial requests, code, customer messages, dataset questions) runs twice:

- on the offline provider, whose rule-based planner decides for itself;
- through a real `ChatOpenAI` against a loopback server whose planner decides as the set
  says a well-behaved model would (answer directly, decline, one subtask, a plan) and whose
  workers are the offline engines: what each decision costs, not a model's judgement.

Reported per path and category: requests whose answer was not about what was asked yet
ended `done` (`wrong_topic_done`, target 0), outcomes as the set expects, model calls per
request (all, and the orchestrator's: planning, judging, synthesis; target 1 for simple
requests), subtasks per request. Writes `bench/results/honesty.json`.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from foreman import Context, build_graph
from foreman.core.models import load_chat_model
from foreman.workers.support.sample import generate
from tests.support.openai_server import OpenAICompatServer
from tests.support.request_set import (
    FollowTheSet,
    Outcome,
    load_set,
    model_problems,
    offline_problems,
    run_request,
    wrong_topic_done,
)

OUT = Path(__file__).resolve().parent / "results" / "honesty.json"
SIMPLE = ("trivial", "off-topic")


async def run_path(path: str, shop_db: str) -> list[tuple[dict[str, Any], Outcome, list[str]]]:
    """Every request of the set on one path: (entry, outcome, problems)."""
    app = build_graph().compile(checkpointer=InMemorySaver())
    spec = "offline" if path == "offline" else "local:m"
    ctx = Context(planner_model=spec, worker_model=spec, synthesizer_model=spec, support_db=shop_db)
    judge = offline_problems if path == "offline" else model_problems
    runs = []
    for entry in load_set():
        out = await run_request(app, entry, ctx)
        runs.append((entry, out, judge(entry, out)))
    return runs


def summarise(runs: list[tuple[dict[str, Any], Outcome, list[str]]]) -> dict[str, Any]:
    """Figures of one path, overall and per category."""
    by_category: dict[str, list[tuple[dict[str, Any], Outcome, list[str]]]] = defaultdict(list)
    for run in runs:
        by_category[run[0]["category"]].append(run)

    def figures(group: list[tuple[dict[str, Any], Outcome, list[str]]]) -> dict[str, Any]:
        outs = [o for _, o, _ in group]
        return {
            "requests": len(group),
            "as_expected": sum(not p for _, _, p in group),
            "wrong_topic_done": sum(wrong_topic_done(e, o) for e, o, _ in group),
            "model_calls_mean": round(statistics.mean(o.calls for o in outs), 2),
            "orchestrator_calls_mean": round(
                statistics.mean(o.orchestrator_calls for o in outs), 2
            ),
            "subtasks_mean": round(statistics.mean(o.subtasks for o in outs), 2),
            "statuses": dict(sorted(_count(o.status for o in outs).items())),
        }

    simple = [r for r in runs if r[0]["category"] in SIMPLE]
    return {
        **figures(runs),
        "simple_requests_max_model_calls": max(o.calls for _, o, _ in simple),
        "categories": {c: figures(g) for c, g in sorted(by_category.items())},
        "not_as_expected": [{"request": e["request"], "problems": p} for e, _, p in runs if p],
    }


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for v in values:
        counts[v] += 1
    return counts


def table(result: dict[str, Any]) -> str:
    """The figures as a text table."""
    lines = [
        f"{'path':9} {'category':13} {'n':>3} {'expected':>8} {'wrong done':>10} "
        f"{'calls':>6} {'orch.':>6} {'subtasks':>8}"
    ]
    for path in ("offline", "model"):
        res = result[path]
        rows = [("all", res), *res["categories"].items()]
        for name, f in rows:
            lines.append(
                f"{path:9} {name:13} {f['requests']:>3} {f['as_expected']:>8} "
                f"{f['wrong_topic_done']:>10} {f['model_calls_mean']:>6} "
                f"{f['orchestrator_calls_mean']:>6} {f['subtasks_mean']:>8}"
            )
    return "\n".join(lines)


async def main_async() -> dict[str, Any]:
    """Both paths over the whole set."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="foreman-honesty-") as tmp:
        shop_db = str(generate(Path(tmp) / "shop.sqlite"))
        offline = await run_path("offline", shop_db)
        with OpenAICompatServer(FollowTheSet()) as server:
            os.environ.update(
                LOCAL_BASE_URL=server.base_url, LOCAL_API_KEY="bench", NO_PROXY="127.0.0.1"
            )
            load_chat_model.cache_clear()
            model = await run_path("model", shop_db)
    return {
        "offline": summarise(offline),
        "model": summarise(model),
        "bench_seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    """Run, print and write the figures."""
    result = asyncio.run(main_async())
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(result))
    for path in ("offline", "model"):
        res = result[path]
        print(
            f"{path}: wrong-topic answers ended done {res['wrong_topic_done']} (target 0); "
            f"simple requests at most {res['simple_requests_max_model_calls']} model call(s)"
        )
    print(f"wrote {OUT} ({result['bench_seconds']} s)")


if __name__ == "__main__":
    main()
