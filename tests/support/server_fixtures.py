"""The real `langgraph dev` server and its loopback models, as pytest fixtures and helpers.

Registered in `tests/conftest.py` (`pytest_plugins`). The servers are session fixtures, so
the modules that use them (`tests/test_langgraph_dev*.py`) share one start: `dev_server`
persists to a scratch SQLite file through `FOREMAN_DB` and `foreman/server.py`,
`pg_dev_server` to the local PostgreSQL. Runs use the offline models, or `local:NAME`
models: a loopback OpenAI-compatible server started first, whose `EngineResponder` answers
with the offline engines and records every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import NotFoundError

from tests.support import langgraph_dev
from tests.support.engine_models import Call, EngineResponder
from tests.support.langgraph_dev import REPO, DevServer
from tests.support.openai_server import OpenAICompatServer

RUN_TIMEOUT_S = 60.0
PG_URL = os.environ.get("FOREMAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
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
# The offline planner's plan for HEAT_PUMPS: r1 -> w1, r2 -> w2, (w1, w2) -> summary.
OBJECTIVES = {
    "r1": "Find evidence on how they work",
    "r2": "Find evidence on running costs",
    "w1": "Write the report section on how they work",
    "w2": "Write the report section on running costs",
    "summary": "Write an executive summary",
}


def subtask_of(call: Call) -> str | None:
    """The plan subtask a model request belongs to, by its objective."""
    found = [sid for sid, text in OBJECTIVES.items() if call.objective.startswith(text)]
    return found[0] if found else None


@pytest.fixture(scope="session")
def loopback_models() -> Iterator[tuple[OpenAICompatServer, EngineResponder]]:
    """The loopback OpenAI-compatible server `local:NAME` specs point the dev server at."""
    responder = EngineResponder()
    with OpenAICompatServer(responder) as server:
        yield server, responder
        responder.reset()


@pytest.fixture
def responder(
    loopback_models: tuple[OpenAICompatServer, EngineResponder],
) -> Iterator[EngineResponder]:
    """The loopback models' responder, with no scripted behaviour left from another test."""
    loopback_models[1].reset()
    yield loopback_models[1]
    loopback_models[1].reset()


def serve(
    workdir: Path, env: dict[str, str], graphs: dict[str, str] | None = None, jobs: int = 1
) -> Iterator[DevServer]:
    """Run `langgraph dev` for a fixture; the SDK's httpx client must not use a proxy."""
    try:
        with (
            # Tests run the same requests again and count the model calls each makes: a
            # result reused from an earlier test would change them (the cache has its own).
            langgraph_dev.dev_server(
                workdir, {"FOREMAN_CACHE": "off", **env}, graphs, jobs
            ) as server,
            pytest.MonkeyPatch.context() as mp,
        ):
            for var in langgraph_dev.PROXY_VARS:
                mp.delenv(var, raising=False)
                mp.delenv(var.lower(), raising=False)
            mp.setenv("NO_PROXY", "127.0.0.1,localhost")
            mp.setenv("no_proxy", "127.0.0.1,localhost")
            yield server
    except langgraph_dev.DevServerError as exc:
        pytest.fail(f"`langgraph dev` did not start: {exc}")


@pytest.fixture(scope="session")
def db_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SQLite file the test server persists to (`FOREMAN_DB`)."""
    return tmp_path_factory.mktemp("foreman-db") / "server.sqlite"


@pytest.fixture(scope="session")
def dev_server(
    tmp_path_factory: pytest.TempPathFactory,
    loopback_models: tuple[OpenAICompatServer, EngineResponder],
    db_file: Path,
) -> Iterator[DevServer]:
    """`langgraph dev` persisting to `db_file`, its `local:` models on the loopback server."""
    env = {
        "FOREMAN_DB": f"sqlite:{db_file}",
        "LOCAL_BASE_URL": loopback_models[0].base_url,
        "LOCAL_API_KEY": "test",
        "FOREMAN_HTTP_RETRIES": "0",
        "FOREMAN_HTTP_TIMEOUT": str(RUN_TIMEOUT_S),
    }
    yield from serve(tmp_path_factory.mktemp("langgraph-dev"), env)


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
        with contextlib.suppress(NotFoundError):  # the test may have deleted it
            await client.threads.delete(thread_id)


async def run_to_end(
    client: LangGraphClient,
    server: DevServer,
    thread_id: str,
    assistant_id: str = "foreman",
    **kwargs: Any,
) -> dict[str, Any]:
    """Start a background run on the thread and wait for it to finish."""
    run = await client.runs.create(thread_id, assistant_id, **kwargs)
    async with asyncio.timeout(RUN_TIMEOUT_S):
        result = await client.runs.join(thread_id, run["run_id"])
    finished = await client.runs.get(thread_id, run["run_id"])
    assert finished["status"] == "success" and "__error__" not in (result or {}), (
        f"run {finished['status']}: {(result or {}).get('__error__')}\n{server.log()}"
    )
    return result


def attempt_models(values: dict[str, Any]) -> dict[str, set[str]]:
    """The model specs each worker's attempts ran with, from a thread's state."""
    seen: dict[str, set[str]] = {}
    for rec in values["results"].values():
        for attempt in rec["attempts"]:
            seen.setdefault(attempt["worker"], set()).add(attempt["model"])
    return seen


@pytest.fixture(scope="session")
def pg_dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """`langgraph dev` persisting to the local PostgreSQL."""
    yield from serve(tmp_path_factory.mktemp("langgraph-dev-pg"), {"FOREMAN_DB": PG_URL})
