"""The data worker: a script written for the question runs in the sandbox on a copy of the file."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
from langgraph.checkpoint.memory import InMemorySaver

from foreman import Context, build_graph
from foreman.core.context import DEFAULT_DATASETS
from foreman.workers.data import PNG_MAGIC
from tests.conftest import scripted_context
from tests.support.scripted import ScriptedChatModel

QUESTION = "Using the dataset heat_pump_trial.csv, what is the average cop by region? Plot a chart."


async def run(request: str, ctx: Context, thread: dict[str, Any]) -> dict[str, Any]:
    app = build_graph().compile(checkpointer=InMemorySaver())
    await app.ainvoke({"request": request}, thread, context=ctx)
    return dict((await app.aget_state(thread)).values)


async def test_offline_analysis_prints_the_right_table_and_stores_the_chart(
    thread: dict[str, Any], tmp_path: Path
) -> None:
    values = await run(QUESTION, Context(artifacts_dir=str(tmp_path)), thread)
    assert values["status"] == "done"
    (rec,) = values["results"].values()
    out = rec["output"]
    assert rec["worker"] == "data" and rec["status"] == "accepted"
    expected = pd.read_csv(DEFAULT_DATASETS / "heat_pump_trial.csv").groupby("region")["cop"]
    for region, mean in expected.mean().round(2).items():
        assert f"{region}" in out["stdout"] and f"{mean:.2f}" in out["stdout"]
    (plot,) = out["artifacts"]
    data = Path(plot["path"]).read_bytes()  # noqa: ASYNC240 (a test reading one small file)
    assert data.startswith(PNG_MAGIC) and plot["bytes"] == len(data)
    assert Path(plot["path"]).name == f"{hashlib.sha256(data).hexdigest()}.png"  # by content
    assert plot["path"] in values["answer"]


async def test_sqlite_dataset_with_a_model_written_query(
    models: dict[str, ScriptedChatModel], thread: dict[str, Any], tmp_path: Path
) -> None:
    db = tmp_path / "sales.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE sales (region TEXT, amount REAL)")
        conn.executemany("INSERT INTO sales VALUES (?, ?)", [("N", 10), ("N", 5), ("S", 7)])
    script = (
        "import sqlite3\n"
        "rows = sqlite3.connect('sales.sqlite').execute("
        "'SELECT region, SUM(amount) FROM sales GROUP BY region ORDER BY region').fetchall()\n"
        "print('Total by region')\n"
        "for region, total in rows:\n"
        "    print(region, total)\n"
    )
    models["worker"].on("AnalysisScript", "sales.sqlite", {"code": script, "explanation": "sum"})
    plan = {"goal": "g", "subtasks": [
        {"id": "d", "worker": "data", "objective": "Total amount by region in sales.sqlite"}
    ]}  # fmt: skip
    models["planner"].on("Plan", "sales", plan)
    ctx = scripted_context(datasets_dir=str(tmp_path), artifacts_dir=str(tmp_path / "a"))
    values = await run("Total sales by region", ctx, thread)
    out = values["results"]["d"]["output"]
    # The model saw the schema, not just the file name.
    prompt = models["worker"].calls_for("AnalysisScript")[0].prompt
    assert "table sales (3 rows): region TEXT, amount REAL" in prompt
    assert "N 15.0" in out["stdout"] and "S 7.0" in out["stdout"]


async def test_a_script_that_reads_outside_its_directory_fails_with_the_reason(
    models: dict[str, ScriptedChatModel], thread: dict[str, Any], tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    snoop = f"print(open({str(secret)!r}).read())\n"
    models["worker"].on("AnalysisScript", "heat_pump_trial", {"code": snoop})
    ctx = scripted_context(max_replans=0, artifacts_dir=str(tmp_path / "a"))
    app = build_graph().compile(checkpointer=InMemorySaver())
    await app.ainvoke({"request": QUESTION}, thread, context=ctx)
    rec = (await app.aget_state(thread)).values["results"]["analysis"]
    assert rec["status"] == "failed"
    assert "hunter2" not in str(rec)
    assert "Permission denied" in (rec["error"] or "") or "sandbox" in (rec["error"] or "")


async def test_the_worker_asks_which_dataset_when_it_cannot_tell(
    thread: dict[str, Any], tmp_path: Path
) -> None:
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("x,y\n1,2\n")
    app = build_graph().compile(checkpointer=InMemorySaver())
    ctx = Context(datasets_dir=str(tmp_path))
    await app.ainvoke({"request": "What is the average y in the dataset?"}, thread, context=ctx)
    (question,) = [i.value for i in (await app.aget_state(thread)).interrupts]
    assert question["kind"] == "clarification" and "a.csv, b.csv" in question["question"]
