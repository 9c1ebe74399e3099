"""Adding a worker without editing Foreman: $FOREMAN_WORKERS (entry points work alike)."""

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from foreman import build_graph
from foreman.workers import registry as reg
from tests.conftest import scripted_context


@pytest.fixture
def with_shouter(monkeypatch):
    monkeypatch.setenv("FOREMAN_WORKERS", "tests.support.custom_worker:make")
    reg.default_registry.cache_clear()
    yield reg.default_registry()
    reg.default_registry.cache_clear()


async def test_a_registered_worker_is_planned_and_dispatched(with_shouter, models, thread):
    assert {"research", "writer", "llm", "shouter"} <= set(with_shouter)
    assert "shouter: repeats its objective in capital letters" in with_shouter.describe()
    plan = {"goal": "g", "subtasks": [{"id": "s1", "worker": "shouter", "objective": "hello"}]}
    models["planner"].on("Plan", "shouter: repeats its objective", plan)
    models["synth"].on("text", "HELLO", "HELLO")
    app = build_graph().compile(checkpointer=InMemorySaver())
    out = await app.ainvoke({"request": "shout hello"}, thread, context=scripted_context())
    assert out["status"] == "done" and "HELLO" in out["answer"]
    assert "shouter" in models["planner"].calls_for("Plan")[0].prompt


def test_bad_targets_are_explained(monkeypatch):
    monkeypatch.setenv("FOREMAN_WORKERS", "tests.support.custom_worker")
    with pytest.raises(ValueError, match="must be module:attribute"):
        reg.discover_workers()
    monkeypatch.setenv("FOREMAN_WORKERS", "tests.support.custom_worker:Shout")
    with pytest.raises(TypeError, match="not a WorkerSpec"):
        reg.discover_workers()


def test_duplicate_worker_names_are_rejected():
    from tests.support.custom_worker import make

    with pytest.raises(ValueError, match="two workers are named shouter"):
        reg.WorkerRegistry([make(), make()])
