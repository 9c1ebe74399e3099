"""Run history across runs and restarts, on SQLite and PostgreSQL, and `foreman stats`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import psycopg
import pytest

from foreman import build_graph
from foreman.checkpointers import open_persistence
from foreman.cli.stats import read_rows, select
from foreman.core.history import History, quantile
from foreman.orchestration.history import forget_views
from tests.conftest import scripted_context
from tests.support.persistence import PG_TABLES

REQUEST = "Explain how a heat pump moves heat"
EXPLAIN = "Explain how heat pumps move heat."
PLAN = {
    "goal": "explain heat pumps",
    "approach": "plan",
    "rationale": "one step",
    "subtasks": [{"id": "a1", "worker": "llm", "objective": EXPLAIN}],
}


@pytest.fixture(autouse=True)
def cache_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache as users have it (`tests/conftest.py` turns it off for the other tests)."""
    monkeypatch.setenv("FOREMAN_CACHE", "use")


def stats_line(output: str, worker: str) -> list[str]:
    [line] = [row for row in output.splitlines() if row.startswith(f"{worker} ")]
    return line.split()


async def test_history_outlives_the_process_on_both_backends(backend_db: str, models: Any) -> None:
    """Rows written by runs are read back by a new process, and `foreman stats` agrees
    with the runs' own records: acceptance, latency quantiles, tokens, cache hits."""
    forget_views()
    models["planner"].on("Plan", "<request>", PLAN)
    models["worker"].on("Answer", EXPLAIN, {"text": ""}, times=1)  # empty: retried
    models["worker"].on("Answer", EXPLAIN, {"text": "With a refrigerant loop."})
    ctx = scripted_context()
    records = {}
    # the same helpers as the CLI: the checkpointer and the store of one database
    async with open_persistence(backend_db) as (saver, store):
        if backend_db.startswith("postgresql://"):  # the test database starts empty
            with psycopg.connect(backend_db, autocommit=True) as conn:
                conn.execute(f"TRUNCATE {', '.join(PG_TABLES)}")
        app = build_graph().compile(checkpointer=saver, store=store)
        for thread in ("h1", "h2"):  # h2 reuses h1's result from the cache
            config = {"configurable": {"thread_id": thread}}
            out = await app.ainvoke({"request": REQUEST}, config, context=ctx)
            assert out["status"] == "done", out.get("error")
            records[thread] = (await app.aget_state(config)).values["results"]["a1"]
    attempts = records["h1"]["attempts"]
    assert [a["verdict"] for a in attempts] == ["retry", "accept"]
    assert [a.get("cached", False) for a in records["h2"]["attempts"]] == [True]
    forget_views()

    rows = await read_rows(backend_db)  # a fresh opening, without the graph
    assert sorted((r["thread_id"], r["attempt"], r["cached"]) for r in rows) == [
        ("h1", 1, False),
        ("h1", 2, False),
        ("h2", 1, True),
    ]
    stats = History(rows).worker("llm", "scripted:worker")
    assert (stats.attempts, stats.accepted, stats.cache_hits) == (2, 1, 1)
    latencies = sorted(a["duration_s"] for a in attempts)
    assert stats.latency(0.95) == quantile(latencies, 0.95) == latencies[1]
    assert stats.latency(0.5) == latencies[0]
    assert select(rows, "llm", since_s=3600) == rows and select(rows, "writer", None) == []

    # a new process: `foreman stats` on the same database
    shown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "foreman", "stats", "--db", backend_db],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert shown.returncode == 0, shown.stderr
    worker, model, tries, ok, per_try, total, p50, p95, tokens, hits = stats_line(
        shown.stdout, "llm"
    )
    assert (worker, model, tries, ok, hits) == ("llm", "scripted:worker", "2", "50%", "1")
    assert (p50, p95) == (f"{latencies[0]:.2f}s", f"{latencies[1]:.2f}s")
    assert tokens == "10/5" and per_try == total == "0.0000"  # scripted: 10 in, 5 out
    assert "2 attempt(s) and 1 cache hit(s) from 2 run(s)" in shown.stdout


def test_stats_without_history_says_so(cli: Any) -> None:
    result = cli("stats")
    assert result.exit_code == 0
    assert "no run history in sqlite:" in result.output
    assert cli("stats", "--since", "soon").exit_code == 2
    assert cli("stats", "--by", "model").exit_code == 2


def test_stats_filters_by_worker_and_age_and_groups_by_capability(cli: Any) -> None:
    assert cli("run", "Write a report on heat pump running costs", "--quiet").exit_code == 0
    by_worker = cli("stats").output
    assert stats_line(by_worker, "research")[:2] == ["research", "offline"]
    assert stats_line(by_worker, "writer")[:2] == ["writer", "offline"]
    only = cli("stats", "--worker", "writer").output
    assert stats_line(only, "writer") and "\nresearch " not in only
    assert "writing" in cli("stats", "--by", "capability").output
    assert "no attempts match" in cli("stats", "--worker", "nobody").output


def test_stats_reads_the_store_without_the_graph(tmp_path: Any) -> None:
    """`foreman stats` opens the store only: no graph, models or workers are imported."""
    db = tmp_path / "runs.sqlite"
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom foreman.cli import app\n"
        f"out = CliRunner().invoke(app, ['stats', '--db', 'sqlite:{db}'])\n"
        "assert out.exit_code == 0, out.output\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'openai', 'bm25s', "
        "'pandas', 'langchain_openai'} or m.startswith(('foreman.orchestration', "
        "'foreman.workers', 'foreman.core.models', 'foreman.core.state', 'langgraph.pregel', "
        "'langgraph.graph')))\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
