"""Data analysis worker: answers questions about a CSV or SQLite file by running code.

The model sees the dataset's shape (columns, types, first rows), writes a script, and the
script runs in the sandbox beside a copy of the file. Printed tables and saved PNG plots are
the result; plots are stored by content and referenced from the output. The scripts use
pandas and matplotlib, which the data extra installs into the environment the sandbox's
Python is (`pip install 'foreman-agents[data]'`).
"""

from __future__ import annotations

import asyncio
import csv
import re
import sqlite3
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import Field

from foreman.core.context import Context
from foreman.core.extras import MissingExtra, require
from foreman.core.schemas import WorkerStatus
from foreman.core.state import empty_usage
from foreman.workers.base import WorkerInput, WorkerState, ask_worker_model, request_prompt
from foreman.workers.sandbox import SandboxLimits, SandboxUnavailable, run_sandboxed
from foreman.workers.spec import WorkerSpec
from foreman.workers.tools.artifacts import Artifact, store

NAME = "data"
SUFFIXES = {".csv": "csv", ".sqlite": "sqlite", ".db": "sqlite", ".sqlite3": "sqlite"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STDOUT_LIMIT = 6000


class AnalysisScript(WorkerStatus):
    """What the model writes: a script that prints the answer and may save plots."""

    code: str = Field(default="", description="A complete Python script.")
    explanation: str = Field(default="", description="What the script computes, in a line.")


class AnalysisResult(AnalysisScript):
    """The worker's output: the script, what it printed, and the plots it saved."""

    dataset: str = Field(default="", description="File analysed.")
    stdout: str = Field(default="", description="What the script printed (tables).")
    artifacts: list[Artifact] = Field(default_factory=list, description="Saved plots.")
    sandbox: str = Field(default="", description="Why the sandbox stopped the script, if it did.")


class AnalysisState(WorkerState, total=False):
    """Data worker state: adds the chosen dataset and its description."""

    dataset: str
    """Path of the dataset file."""
    description: str
    """Columns, types and first rows, as the model sees them."""


def datasets(folder: str) -> list[Path]:
    """Dataset files the worker may analyse."""
    root = Path(folder)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.suffix.lower() in SUFFIXES)


def choose_dataset(objective: str, available: list[Path]) -> Path | None:
    """The dataset the objective names (file name or stem), or the only one there is."""
    text = objective.lower()

    def named_in(p: Path) -> bool:
        # The file name anywhere; the bare stem only as a word of 3+ letters ("a" is English).
        stem = p.stem.lower()
        return p.name.lower() in text or (
            len(stem) >= 3 and re.search(rf"\b{re.escape(stem)}\b", text) is not None
        )

    named = [p for p in available if named_in(p)]
    if named:
        return max(named, key=lambda p: len(p.name))
    return available[0] if len(available) == 1 else None


def _kind(value: str) -> str:
    try:
        float(value)
    except ValueError:
        return "text"
    return "number"


def describe_dataset(path: Path) -> str:
    """Columns with types and the first rows (CSV), or tables and columns (SQLite)."""
    if SUFFIXES[path.suffix.lower()] == "csv":
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            head = list(islice(reader, 5))
            rows = len(head) + sum(1 for _ in reader)
        kinds = [_kind(head[0][i]) if head else "text" for i in range(len(header))]
        columns = ", ".join(f"{c} ({k})" for c, k in zip(header, kinds, strict=True))
        sample = "\n".join(",".join(r) for r in [header, *head])
        return (
            f'<dataset name="{path.name}" kind="csv" rows="{rows}">\n'
            f"columns: {columns}\nfirst rows:\n{sample}\n</dataset>"
        )
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        lines = []
        for t in tables:
            cols = conn.execute("SELECT name, type FROM pragma_table_info(?)", (t,)).fetchall()
            quoted = '"' + t.replace('"', '""') + '"'  # an identifier from the schema itself
            (count,) = conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()
            lines.append(f"table {t} ({count} rows): " + ", ".join(f"{c} {k}" for c, k in cols))
    return f'<dataset name="{path.name}" kind="sqlite">\n' + "\n".join(lines) + "\n</dataset>"


async def prepare(state: AnalysisState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Pick the dataset and describe it; ask which one when that is unclear.

    Fails at once, before any model call, when pandas or matplotlib is missing: the
    sandbox runs scripts with this interpreter, so they would not import there either.
    """
    try:
        require("the data worker (pandas and matplotlib in the sandbox)", "data")
    except MissingExtra as exc:
        out = AnalysisResult(status="failed", error=str(exc))
        return {"output": out.model_dump(mode="json"), "usage": empty_usage(), "model": "-"}
    inp = WorkerInput.model_validate(state["input"])
    available = await asyncio.to_thread(datasets, runtime.context.datasets_dir)
    chosen = choose_dataset(f"{inp.subtask.objective} {inp.clarification or ''}", available)
    if chosen is None:
        names = ", ".join(p.name for p in available) or "none"
        out = AnalysisResult(
            status="needs_clarification",
            question=f"Which dataset should I analyse? Available in "
            f"{runtime.context.datasets_dir}: {names}.",
        )
        return {"output": out.model_dump(mode="json"), "usage": empty_usage(), "model": "-"}
    description = await asyncio.to_thread(describe_dataset, chosen)
    return {"dataset": str(chosen), "description": description}


def route_after_prepare(state: AnalysisState) -> Literal["write_analysis", "__end__"]:
    """Skip the model when the worker has to ask which dataset, or cannot run scripts."""
    return "__end__" if "output" in state else "write_analysis"


async def write_analysis(state: AnalysisState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask the model for the analysis script."""
    inp = WorkerInput.model_validate(state["input"])
    human = request_prompt(inp) + "\n" + state["description"]
    script, usage, spec = await ask_worker_model(
        NAME, AnalysisScript, "data", human, runtime.context
    )
    out = AnalysisResult(**script.model_dump(), dataset=Path(state["dataset"]).name)
    return {"output": out.model_dump(mode="json"), "usage": usage, "model": spec}


def route_after_writing(state: AnalysisState) -> Literal["run_analysis", "__end__"]:
    """Run the script unless the model gave up or asked a question."""
    return "run_analysis" if state["output"].get("status", "done") == "done" else "__end__"


async def run_analysis(state: AnalysisState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Run the script beside a copy of the dataset; store the plots it saved."""
    ctx = runtime.context
    out = AnalysisResult.model_validate(state["output"])
    path = Path(state["dataset"])
    data = await asyncio.to_thread(path.read_bytes)
    try:
        result = await run_sandboxed(
            ["python", "analysis.py"],
            {"analysis.py": out.code, path.name: data},
            SandboxLimits(wall_seconds=ctx.sandbox_timeout_s),
            collect=("*.png",),
        )
    except SandboxUnavailable as exc:
        out.status, out.error = "failed", f"cannot run code safely here: {exc}"
        return {"output": out.model_dump(mode="json")}
    out.stdout = result.stdout[-STDOUT_LIMIT:]
    if result.violation:
        out.sandbox = result.violation
        out.status, out.error = "failed", f"the sandbox stopped the script: {result.violation}"
    elif not result.ok:
        out.status = "failed"
        out.error = f"the script failed (exit {result.exit_code}): {result.stderr[-1500:]}"
    out.artifacts = await asyncio.to_thread(
        lambda: [
            store(name, blob, ctx.artifacts_dir) for name, blob in sorted(result.files.items())
        ]
    )
    return {"output": out.model_dump(mode="json")}


def check_analysis(output: dict[str, Any], inp: WorkerInput, ctx: Context) -> list[str]:
    """Data rules: the script printed a result or saved a plot; plots are real PNG files."""
    problems: list[str] = []
    if not output.get("stdout", "").strip() and not output.get("artifacts"):
        problems.append("the script printed nothing and saved no plot")
    for a in output.get("artifacts", []):
        try:
            with open(a["path"], "rb") as f:
                if f.read(8) != PNG_MAGIC:
                    problems.append(f"{a['name']} is not a PNG image")
        except OSError:
            problems.append(f"{a['name']} was not stored")
    return problems


def render_analysis(output: dict[str, Any]) -> str:
    """Explanation, printed tables, plot links and the script."""
    parts = [f"{output.get('explanation', '')} (dataset `{output.get('dataset', '')}`)".strip()]
    if output.get("stdout", "").strip():
        parts.append(f"```text\n{output['stdout'].rstrip()}\n```")
    parts += [f"![{a['name']}]({a['path']})" for a in output.get("artifacts", [])]
    parts.append(
        f"<details><summary>script</summary>\n\n```python\n{output.get('code', '')}\n```"
        "\n</details>"
    )
    return "\n\n".join(parts)


def build() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the data analysis worker subgraph."""
    builder = StateGraph(AnalysisState, context_schema=Context)
    builder.add_node(prepare)
    builder.add_node(write_analysis)
    builder.add_node(run_analysis)
    builder.add_edge(START, "prepare")
    builder.add_conditional_edges("prepare", route_after_prepare)
    builder.add_conditional_edges("write_analysis", route_after_writing)
    builder.add_edge("run_analysis", END)
    return builder.compile(name=NAME, checkpointer=False)


def spec() -> WorkerSpec:
    """The `data` worker as the planner sees it and the validator checks it."""
    return WorkerSpec(
        name="data",
        capability="data analysis",
        description="answers a question about a CSV or SQLite dataset (name the file "
        "in the objective) by running pandas or SQL in a sandbox; returns tables and "
        "PNG plots",
        graph=build(),
        # the datasets it reads, and where its plots are (a reused result links to them)
        reads=("datasets_dir", "artifacts_dir"),
        output_schema=AnalysisResult,
        check=check_analysis,
        render=render_analysis,
    )
