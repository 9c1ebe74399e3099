"""Shared fixtures: environment, scripted models, graphs compiled with a checkpointer."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

os.environ.update(
    LANGSMITH_TRACING="false",
    LANGCHAIN_TRACING_V2="false",
    LANGGRAPH_CLI_NO_ANALYTICS="1",
    LANGGRAPH_NO_VERSION_CHECK="true",
    # Tests share the PostgreSQL database, across test runs and in parallel: a result one
    # test cached must not answer another's subtask. The cache's own tests turn it on.
    FOREMAN_CACHE="off",
)

from foreman import Context, build_graph  # noqa: E402
from foreman.core.models import register_provider, unregister_provider  # noqa: E402
from tests.support.scripted import ScriptedChatModel  # noqa: E402

# Fixtures used by several modules: the `langgraph dev` server and its loopback models
# (session-scoped), the graph on SQLite and PostgreSQL (`persistence`), and the sandbox
# tests' process `marker`.
pytest_plugins = [
    "tests.support.server_fixtures",
    "tests.support.persistence",
    "tests.support.sandbox",
]

HEAT_PUMPS = "Write a report on residential heat pumps: how they work and running costs"


@pytest.fixture
def models() -> Iterator[dict[str, ScriptedChatModel]]:
    """Scripted models by name, reachable as `scripted:NAME` specs."""
    table: dict[str, ScriptedChatModel] = {}

    def factory(name: str) -> ScriptedChatModel:
        return table.setdefault(name, ScriptedChatModel(model_name=name))

    register_provider("scripted", factory)
    for name in ("planner", "worker", "judge", "synth"):
        factory(name)
    yield table
    unregister_provider("scripted")


def scripted_context(**overrides: Any) -> Context:
    """A Context whose roles all use scripted models."""
    base: dict[str, Any] = dict(
        planner_model="scripted:planner",
        worker_model="scripted:worker",
        validator_model="scripted:judge",
        synthesizer_model="scripted:synth",
    )
    base.update(overrides)
    return Context(**base)


@pytest.fixture
def app() -> Any:
    """The Foreman graph with the built-in workers and an in-memory checkpointer."""
    return build_graph().compile(checkpointer=InMemorySaver())


@pytest.fixture
def thread() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


@pytest.fixture(scope="session")
def shop_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A freshly generated sample shop database (the one `make data` writes)."""
    from foreman.workers.support.sample import generate

    return str(generate(tmp_path_factory.mktemp("shop") / "shop.sqlite"))


@pytest.fixture
def cli(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `foreman` in-process on a fresh home and SQLite database (offline models)."""
    from typer.testing import CliRunner

    from foreman.cli import app

    monkeypatch.setenv("FOREMAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FOREMAN_DB", f"sqlite:{tmp_path / 'cli.sqlite'}")
    monkeypatch.setenv("COLUMNS", "200")  # no wrapped lines to match across
    for var in (
        "FOREMAN_PLANNER_MODEL",
        "FOREMAN_WORKER_MODEL",
        "FOREMAN_VALIDATOR_MODEL",
        "FOREMAN_SYNTHESIZER_MODEL",
        "FOREMAN_THREAD_TTL",
    ):
        monkeypatch.delenv(var, raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Any:
        return runner.invoke(app, list(args), catch_exceptions=False, input=input)

    return invoke
