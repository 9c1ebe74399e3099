"""MCP workers (`kind = "mcp"`) against a real MCP server, over stdio and streamable HTTP.

The server (`tests/support/mcp_server.py`, FastMCP) logs every call it receives and the
process id of each start, so the tests see what reached it and that no stdio server
outlives its attempt. Runs go through the compiled Foreman graph on the offline model, and
once on a real `ChatOpenAI` through the loopback OpenAI-compatible server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from langgraph.types import Command

from foreman import Context
from foreman.core.models import register_provider, unregister_provider
from foreman.core.schemas import Subtask
from foreman.workers.base import WorkerInput
from foreman.workers.declared import mcp as mcp_kind
from foreman.workers.declared.build import declared_workers
from tests.support.mcp_fixtures import (
    RogueModel,
    alive,
    received,
    serve_http,
    start_up_file,
    started,
    write_workers_file,
)
from tests.support.openai_server import OpenAICompatServer, Reply
from tests.support.scripted import ScriptedChatModel
from tests.support.scripted_http import ScriptedResponder, serve

CONVERT = "Use the converter to convert 26.2 miles to km."
KM = "26.2 miles = 42.16 km"


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The test server over streamable HTTP on a free loopback port: its URL and call log."""
    log = tmp_path_factory.mktemp("mcp-http") / "calls.jsonl"
    with serve_http(log) as url:
        yield url, log


@pytest.fixture
def calls(tmp_path: Path) -> Path:
    """The stdio servers' call log (a file per test)."""
    return tmp_path / "calls.jsonl"


@pytest.fixture
def pids(tmp_path: Path) -> Path:
    """The process ids of the stdio servers started in a test, one a line."""
    return tmp_path / "pids"


@pytest.fixture
def workers_file(
    tmp_path: Path, calls: Path, pids: Path, http_server: tuple[str, Path]
) -> Iterator[Path]:
    """MCP workers over both transports, each allowed a few of the server's tools."""
    path = tmp_path / "workers.toml"
    write_workers_file(path, calls, pids, http_server[0])
    yield path
    assert not alive(pids), "a stdio MCP server outlived the test's attempts"


async def run(app: Any, thread: dict[str, Any], request: str, **settings: Any) -> dict[str, Any]:
    """Run `request` to its end or first pause; the state's values."""
    await app.ainvoke({"request": request}, thread, context=Context(**settings))
    return dict((await app.aget_state(thread)).values)


def only_record(values: dict[str, Any]) -> dict[str, Any]:
    (record,) = values["results"].values()
    return dict(record)


@pytest.mark.parametrize(
    ("worker", "request_text"),
    [
        ("converter", CONVERT),
        ("http_units", "Use http units to convert 26.2 miles to km."),
    ],
    ids=["stdio", "streamable_http"],
)
async def test_the_answer_uses_the_tool_result(
    app: Any,
    thread: dict[str, Any],
    workers_file: Path,
    calls: Path,
    pids: Path,
    http_server: tuple[str, Path],
    worker: str,
    request_text: str,
):
    log = calls if worker == "converter" else http_server[1]
    before = len(received(log))
    values = await run(app, thread, request_text, workers_file=str(workers_file))
    assert values["status"] == "done", values.get("error")
    assert "42.16 km" in values["answer"]
    record = only_record(values)
    assert (record["worker"], record["status"]) == (worker, "accepted")
    (attempt,) = record["attempts"]
    assert attempt["tool_calls"] == [
        {"tool": "miles_to_km", "args": {"miles": 26.2}, "status": "ok", "result": KM}
    ]
    assert [c["tool"] for c in received(log)[before:]] == ["miles_to_km"]
    if worker == "converter":  # one server process per attempt, gone after it
        assert len(started(pids)) == 1 and not alive(pids)


async def test_a_server_started_as_a_module_from_its_folder(
    app: Any, thread: dict[str, Any], workers_file: Path, calls: Path
):
    request = 'Ask the counter to count the words in "the quick brown fox jumps".'
    values = await run(app, thread, request, workers_file=str(workers_file))
    assert values["status"] == "done", values.get("error")
    assert "5 words" in values["answer"]
    assert received(calls)[0]["args"] == {"text": "the quick brown fox jumps"}


async def test_the_worker_is_given_only_its_allowed_tools(
    app: Any,
    thread: dict[str, Any],
    workers_file: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    bound: list[list[str]] = []
    attempt = mcp_kind.agent_attempt

    async def recording(name: str, tools: Any, *args: Any) -> Any:
        bound.append([t.name for t in tools])
        return await attempt(name, tools, *args)

    monkeypatch.setattr(mcp_kind, "agent_attempt", recording)
    values = await run(app, thread, CONVERT, workers_file=str(workers_file))
    assert values["status"] == "done"
    assert bound == [["miles_to_km"]]  # the server offers four


@pytest.fixture
def rogue() -> Iterator[None]:
    register_provider("rogue", lambda name: RogueModel())
    yield
    unregister_provider("rogue")


async def test_a_tool_off_the_list_is_refused_and_never_reaches_the_server(
    app: Any, thread: dict[str, Any], workers_file: Path, calls: Path, rogue: None
):
    values = await run(
        app,
        thread,
        CONVERT,
        workers_file=str(workers_file),
        worker_models={"converter": "rogue:any"},
    )
    record = only_record(values)
    refused, converted = record["attempts"][0]["tool_calls"]
    assert (refused["tool"], refused["status"]) == ("secret_admin_tool", "error")
    assert "secret_admin_tool is not a valid tool, try one of [miles_to_km]" in refused["result"]
    assert (converted["tool"], converted["status"]) == ("miles_to_km", "ok")
    assert [c["tool"] for c in received(calls)] == ["miles_to_km"]
    assert values["status"] == "done" and "42.16 km" in values["answer"]


async def test_a_server_that_cannot_start_is_substituted(
    app: Any, thread: dict[str, Any], workers_file: Path
):
    values = await run(
        app,
        thread,
        "Use the broken units to convert 26.2 miles to km.",
        workers_file=str(workers_file),
    )
    assert values["status"] == "done", values.get("error")
    assert "42.16 km" in values["answer"]
    record = only_record(values)
    assert [a["worker"] for a in record["attempts"]] == [
        "broken_units",
        "broken_units",
        "converter",
    ]
    failed = record["attempts"][0]
    assert (failed["status"], failed["model"], failed["verdict"]) == ("failed", "-", "retry")
    assert failed["feedback"] == [
        "the worker reported failure: MCP server missing (`/nonexistent/foreman-mcp-server`) "
        "could not be used: command not found: /nonexistent/foreman-mcp-server"
    ]
    assert record["attempts"][1]["verdict"] == "substitute"


async def test_a_tool_error_fails_the_attempt_and_the_run_says_why(
    app: Any, thread: dict[str, Any], workers_file: Path, calls: Path
):
    settings = {"workers_file": str(workers_file), "max_replans": 0}
    values = await run(
        app, thread, 'Ask the stock clerk for the stock level of "SKU-123".', **settings
    )
    reason = (
        "tool stock_level failed: Error executing tool stock_level: "
        "warehouse database unreachable while looking up SKU-123"
    )
    record = only_record(values)
    assert record["status"] == "failed" and reason in str(record["error"])
    for attempt in record["attempts"]:
        assert attempt["tool_calls"][0]["status"] == "error"
        assert attempt["output"]["error"] == reason
    assert [c["tool"] for c in received(calls)] == ["stock_level", "stock_level"]
    # no alternative and no replans left: a person is asked; skipping ends the run unanswered
    (task,) = (await app.aget_state(thread)).tasks
    assert reason in task.interrupts[0].value["failure"]
    await app.ainvoke(Command(resume={"action": "skip"}), thread, context=Context(**settings))
    values = dict((await app.aget_state(thread)).values)
    assert values["status"] == "unanswered"
    assert "warehouse database unreachable while looking up SKU-123" in values["answer"]


def subtask_input(worker: str) -> WorkerInput:
    objective = "Convert 26.2 miles to km."
    sub = Subtask(
        id="s1",
        worker=worker,
        objective=objective,
        expected_output="km",
        acceptance_criteria=["km"],
    )
    return WorkerInput(subtask=sub)


@pytest.mark.parametrize(
    ("worker", "reason"),
    [
        ("exits", "the server ended the session: Connection closed; it said: boom: no config"),
        ("hangs", "could not be used: no answer within 1s"),
        ("refused", "could not be used: ConnectError: All connection attempts failed"),
        (
            "real",
            "worker real_w: allow-listed tool miles_to_kms is not offered by MCP server real "
            "(did you mean miles_to_km?)",
        ),
    ],
    ids=["exits", "hangs", "refused", "misspelt_tool"],
)
async def test_start_up_failures_are_failed_attempts(
    tmp_path: Path, pids: Path, worker: str, reason: str
):
    specs = {s.name: s for s in declared_workers(start_up_file(tmp_path, pids), [])}
    runner = specs[f"{worker}_w"].runner
    assert runner is not None
    out = await runner(subtask_input(f"{worker}_w"), Context())
    assert out["output"]["status"] == "failed"
    assert reason in out["output"]["error"]
    assert (out["model"], out["tool_calls"]) == ("-", [])
    assert bool(started(pids)) == (worker != "refused") and not alive(pids)


async def test_a_stdio_server_is_stopped_when_its_attempt_is_cancelled(
    workers_file: Path, pids: Path, monkeypatch: pytest.MonkeyPatch
):
    """The orchestrator cancels an attempt past its `timeout_s`: the server still goes."""
    (spec,) = [s for s in declared_workers(workers_file, []) if s.name == "converter"]
    assert spec.runner is not None
    serving = asyncio.Event()

    async def stalls(*args: Any) -> Any:  # a model that never answers, the tools listed
        serving.set()
        await asyncio.sleep(60)

    monkeypatch.setattr(mcp_kind, "agent_attempt", stalls)
    attempt = asyncio.create_task(spec.runner(subtask_input("converter"), Context()))
    await asyncio.wait_for(serving.wait(), 30)
    assert len(alive(pids)) == 1
    stopping = time.monotonic()
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    assert not alive(pids)
    assert time.monotonic() - stopping < 5  # closing stdin stops it; no kill after a wait


@pytest.mark.parametrize("worker", ["converter", "http_units"])
async def test_an_attempt_does_not_block_the_event_loop(workers_file: Path, worker: str):
    """`langgraph dev` rejects blocking calls in async nodes; blockbuster is its detector."""
    blockbuster = pytest.importorskip("blockbuster")
    (spec,) = [s for s in declared_workers(workers_file, []) if s.name == worker]
    assert spec.runner is not None
    with blockbuster.blockbuster_ctx():
        out = await spec.runner(subtask_input(worker), Context())
    assert "42.16 km" in out["output"]["text"]


async def test_a_provider_error_reaches_the_orchestrator_as_it_is(
    workers_file: Path, pids: Path, monkeypatch: pytest.MonkeyPatch
):
    """Not wrapped in the ExceptionGroup of the sessions' task groups: the run stops on it
    (resumable) as it does for any worker, and the server is stopped."""
    (spec,) = [s for s in declared_workers(workers_file, []) if s.name == "converter"]
    assert spec.runner is not None
    with serve(lambda request: Reply(error=(401, "invalid key")), monkeypatch):
        with pytest.raises(openai.AuthenticationError, match="invalid key"):
            await spec.runner(
                subtask_input("converter"), Context(worker_models={"converter": "local:w"})
            )
    assert len(started(pids)) == 1 and not alive(pids)


async def test_an_mcp_worker_on_chat_openai(
    app: Any,
    thread: dict[str, Any],
    workers_file: Path,
    calls: Path,
    models: dict[str, ScriptedChatModel],
    monkeypatch: pytest.MonkeyPatch,
):
    """The same code path with a real `ChatOpenAI`: tools sent, tool results read back."""
    server: OpenAICompatServer
    with serve(ScriptedResponder(models), monkeypatch) as server:
        values = await run(
            app,
            thread,
            CONVERT,
            workers_file=str(workers_file),
            worker_models={"converter": "local:worker"},
        )
    assert values["status"] == "done", values.get("error")
    assert "42.16 km" in values["answer"]
    turns = [r for r in server.requests if r.get("tools") and not r.get("tool_choice")]
    assert len(turns) == 2  # the call, then the answer from its result
    for turn in turns:
        assert [t["function"]["name"] for t in turn["tools"]] == ["miles_to_km"]
    tool_message = turns[1]["messages"][-1]
    assert tool_message["role"] == "tool" and KM in json.dumps(tool_message["content"])
    (attempt,) = only_record(values)["attempts"]
    assert attempt["model"] == "local:worker"
    assert attempt["tool_calls"][0]["result"] == KM
    assert attempt["usage"]["calls"] == 2
    assert [c["tool"] for c in received(calls)] == ["miles_to_km"]


def test_env_and_headers_take_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token is named in the file, not written there; a missing one is a clear failure."""
    monkeypatch.setenv("NOTES_TOKEN", "s3cret")
    headers = {"Authorization": "Bearer ${NOTES_TOKEN}", "X-Plain": "$NOT_A_VARIABLE"}
    assert mcp_kind.expanded(headers, "notes", "headers") == {
        "Authorization": "Bearer s3cret",
        "X-Plain": "$NOT_A_VARIABLE",
    }
    assert mcp_kind.expanded(None, "notes", "env") is None
    monkeypatch.delenv("NOTES_TOKEN")
    with pytest.raises(mcp_kind.ServerUnavailable, match=r"headers uses \$\{NOTES_TOKEN\}, wh"):
        mcp_kind.expanded(headers, "notes", "headers")
