"""Durability benchmarks: checkpoint size against worker output, and the cost of each mode.

Run from the repository root (about 30 s; `make bench` runs it after the scheduling bench)::

    .venv/bin/python -m bench.durability [--repeats 5] [--pg URL]

1. ``checkpoint_bytes``. The report12 reference DAG runs through the real graph with a
   ``sim`` worker that returns a deterministic Markdown section of ``--output-kb`` (4 KB)
   for each subtask, so dependents and the synthesizer carry real text. After the run the
   bytes the checkpointer holds for the thread are summed: SQLite ``checkpoints``
   (checkpoint + metadata) and ``writes``; PostgreSQL ``checkpoints`` (JSON),
   ``checkpoint_blobs`` and ``checkpoint_writes``. They are compared with the bytes of
   worker output (the JSON of every attempt's output). Once with the store beside the
   checkpointer (what the CLI does: large outputs stored once by content,
   ``graph/outputs.py``), once without (everything inline in state). Target: checkpoint bytes
   ≤ 3x worker output bytes with the store. Then, with the store, the same worker as a
   one-node subgraph (a graph worker, as the model workers are), whose attempts run through
   the workers graph and save their state under their own namespaces for Studio, once per
   ``Context.worker_durability``: ``async`` (every attempt's state) and ``exit`` (only the
   attempts that fail or are cut off: none here). The target is for the tool worker.

2. ``durability``. The same graph with zero-latency workers (so persistence is what is
   timed), under LangGraph's three durability modes, on each backend: wall time per run
   (median of ``--repeats``), and how many checkpoints and writes the run left.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("LANGGRAPH_NO_VERSION_CHECK", "true")

import psycopg  # noqa: E402
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver  # noqa: E402
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402

from bench.foreman_runs import bench_context  # noqa: E402
from bench.simulation import DAGS, PLANS, BenchChatModel, dag_plan  # noqa: E402
from foreman import build_graph  # noqa: E402
from foreman.checkpointers import open_persistence  # noqa: E402
from foreman.core.models import register_provider, unregister_provider  # noqa: E402
from foreman.core.schemas import WorkerStatus  # noqa: E402
from foreman.databases import is_postgres  # noqa: E402
from foreman.orchestration.outputs import load_all, referenced_keys  # noqa: E402
from foreman.workers.base import WorkerInput, WorkerState  # noqa: E402
from foreman.workers.registry import WorkerRegistry, WorkerSpec  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "results" / "durability.json"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB = "foreman_bench"
NO_CORPUS = Path(tempfile.gettempdir()) / "foreman-bench-no-corpus"
MODES = ("sync", "async", "exit")
SIZE_TARGET = 3.0
WORDS = (
    "heat pump flow temperature radiator efficiency tariff compressor refrigerant loop "
    "insulation survey installer season winter grid demand subsidy payback boiler cylinder"
).split()


class Section(WorkerStatus):
    """Output of the sized sim worker."""

    markdown: str = ""


def section(subtask: str, kb: float, inputs: list[str]) -> str:
    """A deterministic Markdown section of about `kb` kilobytes for a subtask."""
    rng = random.Random(subtask)
    words: list[str] = [f"## {subtask}", f"Builds on: {', '.join(inputs) or 'nothing'}."]
    size = sum(len(w) + 1 for w in words)
    while size < kb * 1024:
        sentence = " ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + "."
        words.append(sentence)
        size += len(sentence) + 1
    return "\n".join(words)


def sized_registry(kb: float, call: str = "tool") -> WorkerRegistry:
    """One worker, `sim`, that returns a section of `kb` KB (zero latency).

    `call="tool"` registers it as a tool worker, `call="subgraph"` as a one-node subgraph.
    """

    async def write(inp: WorkerInput, ctx: Any) -> dict[str, Any]:
        got = sorted(inp.dependencies)
        # Dependents really receive their inputs' text (read back from the store if stowed).
        assert all(inp.dependencies[d].text for d in got), "an input arrived empty"
        return {"status": "done", "markdown": section(inp.subtask.id, kb, got)}

    async def write_section(state: WorkerState) -> dict[str, Any]:
        inp = WorkerInput.model_validate(state["input"])
        return {"output": await write(inp, None), "model": "-"}

    builder = StateGraph(WorkerState)
    builder.add_node(write_section)
    builder.add_edge(START, "write_section")
    builder.add_edge("write_section", END)
    subgraph = builder.compile(name="sim", checkpointer=False)
    return WorkerRegistry(
        [
            WorkerSpec(
                name="sim",
                capability="simulation",
                description="writes a fixed-size section",
                tool=write if call == "tool" else None,
                graph=subgraph if call == "subgraph" else None,
                output_schema=Section,
                check=lambda out, inp, ctx: [],
                render=lambda out: str(out.get("markdown", "")),
            )
        ]
    )


def pg_url(admin: str) -> str:
    """A database of the bench's own on the local server (created if missing)."""
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DB,)).fetchone():
            conn.execute(f'CREATE DATABASE "{PG_DB}"')
    return admin.rsplit("/", 1)[0] + f"/{PG_DB}"


async def checkpoint_bytes(saver: Any, thread: str) -> dict[str, int]:
    """Bytes and rows the checkpointer holds for a thread, by table."""
    if isinstance(saver, AsyncSqliteSaver):
        queries = {
            "checkpoints": "SELECT COUNT(*), COALESCE(SUM(LENGTH(checkpoint) + "
            "LENGTH(metadata)), 0) FROM checkpoints WHERE thread_id = ?",
            "writes": "SELECT COUNT(*), COALESCE(SUM(LENGTH(value)), 0) FROM writes "
            "WHERE thread_id = ?",
        }
        out = {}
        for table, sql in queries.items():
            async with saver.conn.execute(sql, (thread,)) as cur:
                rows, size = await cur.fetchone()  # type: ignore[misc]
            out[f"{table}_rows"], out[f"{table}_bytes"] = int(rows), int(size)
        return out
    assert isinstance(saver, AsyncPostgresSaver)
    queries = {
        "checkpoints": "SELECT COUNT(*) AS n, COALESCE(SUM(octet_length(checkpoint::text) + "
        "octet_length(metadata::text)), 0) AS b FROM checkpoints WHERE thread_id = %s",
        "blobs": "SELECT COUNT(*) AS n, COALESCE(SUM(octet_length(blob)), 0) AS b "
        "FROM checkpoint_blobs WHERE thread_id = %s",
        "writes": "SELECT COUNT(*) AS n, COALESCE(SUM(octet_length(blob)), 0) AS b "
        "FROM checkpoint_writes WHERE thread_id = %s",
    }
    out = {}
    async with saver._cursor() as cur:  # the saver's own connection handling
        for table, sql in queries.items():
            await cur.execute(sql, (thread,))
            row = await cur.fetchone()
            out[f"{table}_rows"], out[f"{table}_bytes"] = int(row["n"]), int(row["b"])
    return out


def json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


async def one_run(
    db: str,
    registry: WorkerRegistry,
    plan_key: str,
    n: int,
    mode: str,
    use_store: bool,
    **settings: Any,
) -> dict[str, Any]:
    """Run the graph once on `db` (`settings`: Context fields); return what it left behind."""
    NO_CORPUS.mkdir(exist_ok=True)  # an empty folder: synthesis loads no BM25 corpus
    ctx = dataclasses.replace(bench_context(plan_key, n, str(NO_CORPUS)), **settings)
    thread = uuid.uuid4().hex
    config: Any = {"configurable": {"thread_id": thread}}
    async with open_persistence(db) as (saver, store):
        app = build_graph(registry).compile(checkpointer=saver, store=store if use_store else None)
        started = time.perf_counter()
        out = await app.ainvoke(
            {"request": f"bench {plan_key}"}, config, context=ctx, durability=mode
        )  # type: ignore[arg-type]
        wall = time.perf_counter() - started
        if out.get("status") != "done":
            raise RuntimeError(f"{plan_key}: run ended {out.get('status')}: {out.get('error')}")
        values = (await app.aget_state(config)).values
        records = await load_all(values["results"], store)
        output_bytes = sum(
            json_bytes(a["output"]) for r in records.values() for a in r["attempts"] if a["output"]
        )
        stored = referenced_keys(values["results"].values())
        store_bytes = 0
        for key in stored:
            item = await store.aget(("foreman", "outputs"), key)
            store_bytes += json_bytes(item.value) if item else 0
        sizes = await checkpoint_bytes(saver, thread)
        await saver.adelete_thread(thread)
    total = sum(v for k, v in sizes.items() if k.endswith("_bytes"))
    return {
        "wall_s": wall,
        "worker_output_bytes": output_bytes,
        "checkpoint_bytes": total,
        "store_bytes": store_bytes,
        **sizes,
    }


async def measure(args: argparse.Namespace, dags: dict[str, Any]) -> dict[str, Any]:
    """Both measurements on both backends."""
    PLANS["report12"] = dag_plan(dags["report12"], 0.0)
    PLANS["fanout50"] = dag_plan(dags["fanout50"], 0.0)
    register_provider("bench", lambda name: BenchChatModel(model_name=name or "x"))
    registry = sized_registry(args.output_kb)
    graph_worker = sized_registry(args.output_kb, call="subgraph")
    result: dict[str, Any] = {"output_kb_per_subtask": args.output_kb, "backends": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="foreman-durability-") as tmp:
            backends = {"sqlite": f"sqlite:{Path(tmp) / 'bench.sqlite'}"}
            if args.pg:
                backends["postgres"] = pg_url(args.pg)
            for name, db in backends.items():
                await one_run(db, registry, "report12", 12, "sync", True)  # warm-up
                size = {
                    label: await one_run(db, registry, "report12", 12, "sync", use_store)
                    for label, use_store in (("with_store", True), ("inline", False))
                }
                for kept in ("async", "exit"):
                    size[f"subgraph_{kept}"] = await one_run(
                        db, graph_worker, "report12", 12, "sync", True, worker_durability=kept
                    )
                for row in size.values():
                    row["ratio"] = round(row["checkpoint_bytes"] / row["worker_output_bytes"], 2)
                modes: dict[str, Any] = {}
                for graph_key, n in (("report12", 12), ("fanout50", 50)):
                    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
                    for _ in range(args.repeats):  # round-robin: noise hits every mode alike
                        for mode in MODES:
                            runs[mode].append(await one_run(db, registry, graph_key, n, mode, True))
                    modes[graph_key] = {
                        mode: {
                            "wall_ms_median": round(
                                1000 * statistics.median(r["wall_s"] for r in rs), 1
                            ),
                            "checkpoints": rs[0].get("checkpoints_rows"),
                            "writes": rs[0].get("writes_rows"),
                        }
                        for mode, rs in runs.items()
                    }
                result["backends"][name] = {
                    "backend": "postgres" if is_postgres(db) else "sqlite",
                    "checkpoint_size_report12": size,
                    "durability_modes": modes,
                }
    finally:
        unregister_provider("bench")
    ratios = [
        b["checkpoint_size_report12"]["with_store"]["ratio"] for b in result["backends"].values()
    ]
    result["size_target_max_ratio"] = SIZE_TARGET
    result["size_target_met"] = all(r <= SIZE_TARGET for r in ratios)
    result["repeats"] = args.repeats
    return result


def table(result: dict[str, Any]) -> str:
    """A readable summary."""
    kb = result["output_kb_per_subtask"]
    lines = [
        f"Checkpoint size, report12 (12 subtasks, {kb:g} KB of output each), durability sync",
        f"{'backend':<9} {'mode':<14} {'worker output':>13} {'checkpoint':>11} {'ratio':>6} "
        f"{'store':>9}   target ≤ {SIZE_TARGET:g}x",
    ]
    for name, b in result["backends"].items():
        for label, row in b["checkpoint_size_report12"].items():
            ok = ("ok" if row["ratio"] <= SIZE_TARGET else "MISS") if label == "with_store" else ""
            lines.append(
                f"{name:<9} {label:<14} {row['worker_output_bytes']:>13,} "
                f"{row['checkpoint_bytes']:>11,} {row['ratio']:>5.2f}x "
                f"{row['store_bytes']:>9,}   {ok}"
            )
    lines += [
        "",
        f"Durability modes: wall ms per run, zero-latency workers (median of {result['repeats']})",
        f"{'backend':<9} {'graph':<9} "
        + " ".join(f"{m:>8}" for m in MODES)
        + "   checkpoints (sync/async/exit)",
    ]
    for name, b in result["backends"].items():
        for graph_key, modes in b["durability_modes"].items():
            cps = "/".join(str(modes[m]["checkpoints"]) for m in MODES)
            lines.append(
                f"{name:<9} {graph_key:<9} "
                + " ".join(f"{modes[m]['wall_ms_median']:>8.1f}" for m in MODES)
                + f"   {cps}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per mode (median)")
    parser.add_argument("--output-kb", type=float, default=4.0, help="output size per subtask")
    parser.add_argument(
        "--pg", default=os.environ.get("FOREMAN_BENCH_PG", PG_ADMIN),
        help="PostgreSQL server URL (a database foreman_bench is created); '' to skip",
    )  # fmt: skip
    parser.add_argument("--dags", default=str(DAGS), help="reference DAGs (JSON)")
    parser.add_argument("--out", default=str(OUT), help="where to write the JSON result")
    args = parser.parse_args(argv)
    dags = json.loads(Path(args.dags).read_text(encoding="utf-8"))["graphs"]
    started = time.perf_counter()
    result = asyncio.run(measure(args, dags))
    result["bench_seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(result))
    print(f"\nwrote {out} ({result['bench_seconds']} s)")


if __name__ == "__main__":
    main()
