"""End to end: the real `langgraph dev` server serves the `foreman` graph to the LangGraph SDK.

One server is started per module, from `langgraph.json`, with reload, browser, tracing,
analytics and the version check off. It runs in a temporary directory (with a `graph`
symlink, since `langgraph.json` paths are relative to the working directory) so its
`.langgraph_api/` data and any `.env` of the checkout are kept out of the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.conftest import HEAT_PUMPS

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parent.parent
LANGGRAPH = Path(sys.executable).with_name("langgraph")
READY_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 60.0
# Every model role offline and the bundled corpus, whatever FOREMAN_* says.
OFFLINE: dict[str, Any] = {
    "planner_model": "offline",
    "worker_model": "offline",
    "worker_models": {},
    "validator_model": "offline",
    "synthesizer_model": "offline",
    "judge": False,
    "corpus_dir": str(REPO / "data" / "corpus"),
}
CITATION = re.compile(r"\[how-heat-pumps-work#p\d+\]")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
# Loopback only, never through a proxy.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class DevServer:
    """A running `langgraph dev` process and where its output goes."""

    proc: subprocess.Popen[bytes]
    url: str
    stdout: Path
    stderr: Path

    def log(self, chars: int = 6000) -> str:
        """The end of the server's stderr (and stdout), colour codes removed."""
        parts = []
        for path in (self.stderr, self.stdout):
            text = ANSI.sub("", path.read_text(errors="replace")) if path.exists() else ""
            parts.append(f"--- {path.name} (last {chars} chars) ---\n{text[-chars:]}")
        return "\n".join(parts)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_json(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with DIRECT.open(req, timeout=2) as resp:
        return json.loads(resp.read())


def _announced_url(stderr: Path) -> str | None:
    """The API address the server printed (it moves to another port if ours was taken)."""
    if not stderr.exists():
        return None
    found = re.search(r"API:\s*(http://[^\s]+)", ANSI.sub("", stderr.read_text(errors="replace")))
    return found.group(1).rstrip("/") if found else None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server's whole process group, killing it if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue


def _wait_ready(proc: subprocess.Popen[bytes], port: int, stderr: Path) -> str:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"`langgraph dev` exited with code {proc.returncode}")
        url = _announced_url(stderr) or f"http://127.0.0.1:{port}"
        try:
            if _get_json(f"{url}/ok").get("ok"):
                found = _get_json(f"{url}/assistants/search", {"graph_id": "foreman"})
                if found:
                    return url
                last_error = "no assistant for graph `foreman`"
        except (OSError, ValueError) as exc:
            last_error = repr(exc)
        time.sleep(0.25)
    raise TimeoutError(f"not ready after {READY_TIMEOUT_S:g}s ({last_error})")


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """Start `langgraph dev` on a free loopback port; stop its process group afterwards."""
    assert LANGGRAPH.exists(), f"`langgraph` CLI not found next to {sys.executable}"
    workdir = tmp_path_factory.mktemp("langgraph-dev")
    (workdir / "graph").symlink_to(REPO / "graph", target_is_directory=True)
    stdout, stderr = workdir / "server.stdout.log", workdir / "server.stderr.log"
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key.upper() not in PROXY_VARS and not key.startswith("FOREMAN_")
    }
    env.update(
        LANGSMITH_TRACING="false",
        LANGCHAIN_TRACING_V2="false",
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGGRAPH_NO_VERSION_CHECK="true",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
        # Import this checkout's packages, whichever one the venv has installed.
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p),
    )
    cmd = [
        str(LANGGRAPH),
        "dev",
        "--config",
        str(REPO / "langgraph.json"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-browser",
        "--no-reload",
    ]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    server = DevServer(proc, f"http://127.0.0.1:{port}", stdout, stderr)
    try:
        try:
            server.url = _wait_ready(proc, port, stderr)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"`langgraph dev` did not start: {exc}\n{' '.join(cmd)}\n{server.log()}")
        with pytest.MonkeyPatch.context() as mp:
            # The SDK's httpx client honours proxy variables; loopback must go direct.
            for var in PROXY_VARS:
                mp.delenv(var, raising=False)
                mp.delenv(var.lower(), raising=False)
            mp.setenv("NO_PROXY", "127.0.0.1,localhost")
            mp.setenv("no_proxy", "127.0.0.1,localhost")
            yield server
    finally:
        _stop(proc)


@pytest.fixture
async def client(dev_server: DevServer) -> AsyncIterator[LangGraphClient]:
    client = get_client(url=dev_server.url, api_key=None, timeout=RUN_TIMEOUT_S)
    yield client
    await client.aclose()


@pytest.fixture
async def new_thread(client: LangGraphClient) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Create threads for a test and delete them afterwards."""
    created: list[str] = []

    async def _new() -> str:
        thread = await client.threads.create(metadata={"test": "test_langgraph_dev"})
        created.append(thread["thread_id"])
        return str(thread["thread_id"])

    yield _new
    for thread_id in created:
        await client.threads.delete(thread_id)


async def run_to_end(
    client: LangGraphClient, server: DevServer, thread_id: str, **kwargs: Any
) -> dict[str, Any]:
    """Start a background run of `foreman` on the thread and wait for it to finish."""
    run = await client.runs.create(thread_id, "foreman", **kwargs)
    async with asyncio.timeout(RUN_TIMEOUT_S):
        result = await client.runs.join(thread_id, run["run_id"])
    finished = await client.runs.get(thread_id, run["run_id"])
    assert finished["status"] == "success" and "__error__" not in (result or {}), (
        f"run {finished['status']}: {(result or {}).get('__error__')}\n{server.log()}"
    )
    return result


async def test_plan_review_bad_answer_then_approve(
    client: LangGraphClient, dev_server: DevServer, new_thread: Callable[[], Awaitable[str]]
) -> None:
    thread_id = await new_thread()

    await run_to_end(
        client,
        dev_server,
        thread_id,
        input={"request": HEAT_PUMPS},
        context={**OFFLINE, "review_plan": True},
    )
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["review_plan"]
    assert len(state["interrupts"]) == 1
    first = state["interrupts"][0]
    review = first["value"]
    assert review["kind"] == "plan_review"
    assert review["error"] is None
    subtasks = review["plan"]["subtasks"]
    assert subtasks and all(s["id"] and s["worker"] for s in subtasks)

    # A resume value of the wrong shape does not fail the run: it asks again, with why.
    await run_to_end(client, dev_server, thread_id, command={"resume": {"action": "maybe"}})
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["review_plan"]
    assert len(state["interrupts"]) == 1
    again = state["interrupts"][0]
    assert again["id"] != first["id"]
    assert again["value"]["kind"] == "plan_review"
    assert again["value"]["plan"] == review["plan"]
    error = again["value"]["error"]
    assert isinstance(error, str) and error.strip()
    assert "not understood" in error and "approve" in error

    await run_to_end(client, dev_server, thread_id, command={"resume": {"action": "approve"}})
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "idle"
    state = await client.threads.get_state(thread_id)
    assert state["next"] == [] and not state["interrupts"]
    values = state["values"]
    assert values["status"] == "done", values.get("error")
    assert "Offline extractive mode" in values["answer"]
    assert CITATION.search(values["answer"]), values["answer"][:2000]
    actions = [e["detail"].get("action") for e in values["audit"] if e["kind"] == "plan_review"]
    assert actions == ["approve"]

    history = await client.threads.get_history(thread_id, limit=100)
    assert len(history) >= 5
    assert history[0]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    assert any("review_plan" in h["next"] for h in history)
    assert any("synthesize" in h["next"] for h in history)


async def test_stream_updates_and_custom_events_from_subgraphs(
    client: LangGraphClient, dev_server: DevServer, new_thread: Callable[[], Awaitable[str]]
) -> None:
    thread_id = await new_thread()
    parts: list[tuple[str, Any]] = []
    async with asyncio.timeout(RUN_TIMEOUT_S):
        async for part in client.runs.stream(
            thread_id,
            "foreman",
            input={"request": HEAT_PUMPS},
            context=OFFLINE,
            stream_mode=["updates", "custom"],
            stream_subgraphs=True,
        ):
            parts.append((part.event, part.data))

    errors = [data for event, data in parts if event == "error"]
    assert not errors, f"{errors}\n{dev_server.log()}"
    modes = {event.split("|")[0] for event, _ in parts}
    assert {"metadata", "updates", "custom"} <= modes
    # stream_subgraphs: events from inside the dispatch node carry a namespace.
    assert any(event.startswith("custom|dispatch:") for event, _ in parts)
    assert any(event.startswith("updates|dispatch:") for event, _ in parts)

    custom = [data for event, data in parts if event.split("|")[0] == "custom"]
    assert custom and all(isinstance(d, dict) and "foreman" in d for d in custom)
    kinds = {d["foreman"] for d in custom}
    assert {"phase", "plan", "subtask", "attempt", "verdict"} <= kinds
    plans = [d for d in custom if d["foreman"] == "plan"]
    assert plans and plans[0]["subtasks"]
    planned = {s["id"] for s in plans[0]["subtasks"]}
    statuses: dict[str, set[str]] = {}
    for d in custom:
        if d["foreman"] == "subtask":
            statuses.setdefault(d["id"], set()).add(d["status"])
    assert set(statuses) == planned
    assert all({"running", "accepted"} <= s for s in statuses.values()), statuses

    root_updates = [data for event, data in parts if event == "updates"]
    assert any("synthesize" in u for u in root_updates)

    state = await client.threads.get_state(thread_id)
    assert state["next"] == []
    assert state["values"]["status"] == "done", state["values"].get("error")
    assert CITATION.search(state["values"]["answer"])
