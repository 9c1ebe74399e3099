"""Code worker: writes a component and its tests, then runs the tests in the sandbox."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from foreman.core.context import Context
from foreman.core.schemas import WorkerStatus
from foreman.workers.base import WorkerInput, WorkerState, ask_worker_model, request_prompt
from foreman.workers.sandbox import SandboxLimits, SandboxUnavailable, run_sandboxed
from foreman.workers.spec import WorkerSpec

NAME = "code"
# Plugins installed beside Foreman (langsmith's, pytest-socket, ...) are not the component's
# business, and importing them costs a second per run.
PYTEST = [
    "python",
    "-c",
    "import os, sys; os.environ['PYTEST_DISABLE_PLUGIN_AUTOLOAD'] = '1'; import pytest; "
    "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-c', 'pytest.ini']))",
]
# An ini file in the working directory pins pytest's rootdir there: it never looks upward.
PYTEST_INI = "[pytest]\naddopts = --no-header -rfE\n"
OUTPUT_TAIL = 4000


class SourceFile(BaseModel):
    """One file of the component or its tests."""

    path: str = Field(description="Relative path, e.g. `slugify.py` or `test_slugify.py`.")
    content: str = Field(description="The whole file.")


class CodeSubmission(WorkerStatus):
    """What the model writes: the files of the component and of its pytest tests."""

    files: list[SourceFile] = Field(
        default_factory=list,
        description="Module files and pytest files (`test_*.py`); files given in the inputs "
        "are already there: return only new or changed files, each whole.",
    )
    summary: str = Field(default="", description="What the code does, in one or two lines.")


class CodeResult(CodeSubmission):
    """The worker's output: every file, and how the tests went in the sandbox."""

    tests_passed: bool = Field(default=False, description="pytest exited 0 with tests run.")
    tests_run: int = Field(default=0, description="Tests pytest ran.")
    test_output: str = Field(default="", description="The end of pytest's output.")
    sandbox: str = Field(default="", description="Why the sandbox stopped the run, if it did.")


def _safe(path: str) -> bool:
    p = PurePosixPath(path)
    return bool(path) and not p.is_absolute() and ".." not in p.parts


def inherited_files(inp: WorkerInput) -> dict[str, str]:
    """Files produced by code inputs (a fix or an assembly builds on them)."""
    files: dict[str, str] = {}
    for dep in inp.dependencies.values():
        for f in (dep.output or {}).get("files", []):
            files[f["path"]] = f["content"]
    return files


async def write_code(state: WorkerState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask the code model for the component and its tests."""
    inp = WorkerInput.model_validate(state["input"])
    submission, usage, spec = await ask_worker_model(
        NAME, CodeSubmission, "code", request_prompt(inp), runtime.context
    )
    return {"output": submission.model_dump(), "usage": usage, "model": spec}


def route_after_writing(state: WorkerState) -> Literal["run_tests", "__end__"]:
    """Run the tests unless the model gave up or asked a question."""
    return "run_tests" if state["output"].get("status", "done") == "done" else "__end__"


def pytest_counts(text: str) -> tuple[int, int]:
    """(tests run, tests passed) from pytest's summary line."""
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|error|errors)\b", text)}
    passed = counts.get("passed", 0)
    return passed + counts.get("failed", 0) + counts.get("error", counts.get("errors", 0)), passed


async def run_tests(state: WorkerState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Run pytest over inherited and new files in the sandbox."""
    inp = WorkerInput.model_validate(state["input"])
    out = CodeResult.model_validate(state["output"])
    unsafe = [f.path for f in out.files if not _safe(f.path)]
    if unsafe:
        out.status, out.error = "failed", f"file paths must be relative and inside: {unsafe}"
        return {"output": out.model_dump()}
    files = inherited_files(inp) | {f.path: f.content for f in out.files}
    out.files = [SourceFile(path=p, content=c) for p, c in sorted(files.items())]
    limits = SandboxLimits(wall_seconds=runtime.context.sandbox_timeout_s)
    try:
        result = await run_sandboxed(PYTEST, {"pytest.ini": PYTEST_INI, **files}, limits)
    except SandboxUnavailable as exc:
        out.status, out.error = "failed", f"cannot run code safely here: {exc}"
        return {"output": out.model_dump()}
    text = (result.stdout + result.stderr).strip()
    out.test_output = text[-OUTPUT_TAIL:]
    out.tests_run, passed = pytest_counts(text)
    out.tests_passed = result.ok and passed > 0
    if result.violation:
        out.sandbox = result.violation
        out.status, out.error = "failed", f"the sandbox stopped the tests: {result.violation}"
    return {"output": out.model_dump()}


def check_code(output: dict[str, Any], inp: WorkerInput, ctx: Context) -> list[str]:
    """Code rules: tests exist, ran and passed in the sandbox."""
    files = [f["path"] for f in output.get("files", [])]
    if not files:
        return ["no files were written"]
    if not any(PurePosixPath(p).name.startswith("test_") for p in files):
        return ["no pytest tests were written (add test_*.py files)"]
    if output.get("tests_run", 0) == 0:
        return [f"pytest ran no tests:\n{output.get('test_output', '')[-1500:]}"]
    if not output.get("tests_passed"):
        return [f"the tests fail:\n{output.get('test_output', '')[-1500:]}"]
    return []


def render_code(output: dict[str, Any]) -> str:
    """Summary, test outcome, then every file in a fenced block."""
    outcome = (
        f"{output.get('tests_run', 0)} tests passed in the sandbox"
        if output.get("tests_passed")
        else "tests: FAILED"
    )
    parts = [f"{output.get('summary', '')} ({outcome})".strip()]
    for f in output.get("files", []):
        lang = "python" if f["path"].endswith(".py") else ""
        parts.append(f"`{f['path']}`\n```{lang}\n{f['content'].rstrip()}\n```")
    return "\n\n".join(parts)


def build() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the code worker subgraph."""
    builder = StateGraph(WorkerState, context_schema=Context)
    builder.add_node(write_code)
    builder.add_node(run_tests)
    builder.add_edge(START, "write_code")
    builder.add_conditional_edges("write_code", route_after_writing)
    builder.add_edge("run_tests", END)
    return builder.compile(name=NAME, checkpointer=False)


def spec() -> WorkerSpec:
    """The `code` worker as the planner sees it and the validator checks it."""
    return WorkerSpec(
        name="code",
        capability="coding",
        description="writes a Python component and its pytest tests, runs them in a "
        "sandbox and returns the files with the test result; give it a well-scoped "
        "component per subtask; with code results as inputs it fixes or assembles them",
        graph=build(),
        output_schema=CodeResult,
        check=check_code,
        render=render_code,
    )
