"""The cross-run result cache: hit, miss (model, inputs, version), TTL, refresh, off, delete."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from typing import Any

import pytest

from foreman.checkpointers import open_store
from foreman.core.context import Context
from foreman.core.schemas import Subtask
from foreman.orchestration.result_cache import NAMESPACE, cache_key
from foreman.workers.base import DependencyResult
from foreman.workers.registry import default_registry
from tests.support.scripted import ScriptedChatModel

REQUEST = "Explain heat pumps for homeowners"
EXPLAIN = "Explain how heat pumps move heat."
PLAN = {
    "goal": "a short explainer on heat pumps",
    "approach": "plan",
    "rationale": "explain, then write it up",
    "subtasks": [
        {"id": "a1", "worker": "llm", "objective": EXPLAIN},
        {
            "id": "w1",
            "worker": "writer",
            "objective": "Write a short section for homeowners from the explanation.",
            "inputs": ["a1"],
        },
    ],
}
SCRIPTED = ["--model", "planner=scripted:planner", "--model", "worker=scripted:worker"]


@pytest.fixture(autouse=True)
def cache_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache as users have it (`tests/conftest.py` turns it off for the other tests)."""
    monkeypatch.setenv("FOREMAN_CACHE", "use")


def script(models: dict[str, Any]) -> None:
    models["planner"].on("Plan", "<request>", PLAN)
    models["worker"].on("Answer", EXPLAIN, {"text": "A heat pump moves heat with refrigerant."})
    section = {"status": "done", "title": "Heat pumps", "markdown": "They move heat indoors."}
    models["worker"].on("Section", "Write a short section", section)


def run(cli: Any, thread: str, *options: str) -> str:
    result = cli("run", REQUEST, "--thread", thread, "--quiet", *SCRIPTED, *options)
    assert result.exit_code == 0, result.output
    return str(result.output)


def calls(models: dict[str, Any], name: str = "worker") -> tuple[int, int]:
    """Worker model calls so far: (the llm subtask's, the writer's)."""
    model = models[name]
    return len(model.calls_for("Answer", EXPLAIN)), len(model.calls_for("Section"))


def shown(cli: Any, thread: str) -> dict[str, Any]:
    return json.loads(cli("show", thread, "--format", "json").output)


def entries() -> dict[str, dict[str, Any]]:
    """The cache entries of the `cli` fixture's database, by key."""

    async def read() -> dict[str, dict[str, Any]]:
        async with open_store(os.environ["FOREMAN_DB"]) as store:
            return {i.key: i.value for i in await store.asearch(NAMESPACE, limit=100)}

    return asyncio.run(read())


def test_an_identical_subtask_in_a_later_run_reuses_the_accepted_result(
    models: Any, cli: Any
) -> None:
    script(models)
    run(cli, "t1")
    assert calls(models) == (1, 1)
    assert {e["thread_id"] for e in entries().values()} == {"t1"}
    assert {e["subtask_id"] for e in entries().values()} == {"a1", "w1"}
    said = run(cli, "t2")
    assert calls(models) == (1, 1)  # no worker model call in the second run
    assert "2 reused from the cache (saved $" in said  # the run's last line says so
    first, second = shown(cli, "t1"), shown(cli, "t2")
    assert second["answer"] == first["answer"]
    a1 = second["results"]["a1"]
    assert a1["status"] == "accepted" and len(a1["attempts"]) == 1
    [hit] = a1["attempts"]
    assert hit["cached"] is True and hit["verdict"] == "accept"
    assert hit["model"] == "scripted:worker"  # the model that made it
    assert hit["usage"]["calls"] == 0 and a1["usage"]["cost_usd"] == 0
    assert hit["cached_from"]["thread_id"] == "t1" and hit["cached_from"]["subtask_id"] == "a1"
    assert hit["cached_from"]["usage"] == first["results"]["a1"]["usage"]  # what it saved
    assert "scripted:worker" not in second["usage"]  # the planner's and synthesizer's only
    # the audit trail shows the hits: an event per subtask, and the attempt's origin
    hits = [e for e in second["audit"] if e["kind"] == "cache_hit"]
    assert {(e["subtask"], e["detail"]["from_thread"]) for e in hits} == {
        ("a1", "t1"),
        ("w1", "t1"),
    }
    md = cli("show", "t2", "--format", "md").output
    assert "cache hit: reused the result of `a1` in thread `t1`" in md
    assert "cache_hit `w1` worker=writer, model=scripted:worker, from_thread=t1" in md
    stats = cli("stats").output
    assert "2 attempt(s) and 2 cache hit(s) from 2 run(s)" in stats
    # deleting the run that made them deletes the entries (they hold its outputs)
    assert cli("delete", "t1").exit_code == 0
    assert entries() == {}
    run(cli, "t3")
    assert calls(models) == (2, 2)


def test_another_model_or_other_inputs_miss(models: Any, cli: Any) -> None:
    script(models)
    other = models.setdefault("other", ScriptedChatModel(model_name="other"))
    other.on("Answer", EXPLAIN, {"text": "Heat pumps carry heat uphill, like a fridge."})
    run(cli, "t1")
    # the llm worker on another model: a miss; its answer differs, so the writer's inputs
    # differ and the writer (same model, same version) misses too
    run(cli, "t2", "--model", "llm=scripted:other")
    assert calls(models, "other")[0] == 1
    assert calls(models) == (1, 2)
    results = shown(cli, "t2")["results"]
    assert not any(a.get("cached") for r in results.values() for a in r["attempts"])
    # the same again: both are hits now, from t2
    run(cli, "t3", "--model", "llm=scripted:other")
    assert calls(models, "other")[0] == 1 and calls(models) == (1, 2)
    origins = {
        sid: r["attempts"][0]["cached_from"]["thread_id"]
        for sid, r in shown(cli, "t3")["results"].items()
    }
    assert origins == {"a1": "t2", "w1": "t2"}


def test_the_key_is_the_work_not_its_place_in_a_plan() -> None:
    registry = default_registry()
    llm = registry["llm"]
    sub = Subtask(id="a1", worker="llm", objective=EXPLAIN, inputs=["r1"])
    dep = {"r1": DependencyResult(id="r1", worker="research", status="accepted", text="noise")}
    ctx = Context(worker_model="scripted:worker")
    key = cache_key(llm, sub, dep, ctx)
    renamed = sub.model_copy(update={"id": "x9", "inputs": ["r7"]})
    moved = {"r7": dep["r1"].model_copy(update={"id": "r7"})}
    assert cache_key(llm, renamed, moved, ctx) == key  # ids and plan do not matter
    other_text = {"r1": dep["r1"].model_copy(update={"text": "costs"})}
    assert cache_key(llm, sub, other_text, ctx) != key
    assert cache_key(dataclasses.replace(llm, version="edited"), sub, dep, ctx) != key
    assert cache_key(llm, sub, dep, Context(worker_model="scripted:other")) != key
    assert cache_key(llm, sub, dep, dataclasses.replace(ctx, judge=True)) != key
    assert cache_key(llm, sub.model_copy(update={"context": "for renters"}), dep, ctx) != key
    assert cache_key(llm, sub, dep, ctx, sender="a@example.com") != key
    research = registry["research"]  # the corpus it searches is part of its key
    assert cache_key(research, sub, dep, ctx) != cache_key(
        research, sub, dep, dataclasses.replace(ctx, corpus_dir="/elsewhere")
    )


def test_a_worker_version_is_what_defines_it() -> None:
    llm = default_registry()["llm"]
    assert llm.version == default_registry()["llm"].version  # stable
    described = dataclasses.replace(llm, description="something else", version="")
    assert described.version != llm.version
    assert default_registry()["lookup"].cacheable is False  # live, per-person data


def test_an_expired_entry_is_a_miss_and_is_replaced(
    models: Any, cli: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("FOREMAN_CACHE_TTL_S", "0.001")
    script(models)
    run(cli, "t1")
    made = {e["subtask_id"]: e["created_at"] for e in entries().values()}
    run(cli, "t2")
    assert calls(models) == (2, 2)
    again = {e["subtask_id"]: (e["created_at"], e["thread_id"]) for e in entries().values()}
    assert all(again[s][0] > made[s] and again[s][1] == "t2" for s in made)


def test_refresh_runs_again_and_overwrites(models: Any, cli: Any) -> None:
    script(models)
    run(cli, "t1")
    run(cli, "t2", "--refresh-cache")
    assert calls(models) == (2, 2)
    assert {e["thread_id"] for e in entries().values()} == {"t2"}
    run(cli, "t3")
    assert calls(models) == (2, 2)
    assert shown(cli, "t3")["results"]["a1"]["attempts"][0]["cached_from"]["thread_id"] == "t2"
    # `foreman rerun` runs the subtask again rather than reuse its own result
    assert cli("rerun", "t3", "a1", "--quiet").exit_code == 0
    assert calls(models) == (3, 3)  # and its dependent: both marked to run again


def test_off_neither_reads_nor_writes(models: Any, cli: Any) -> None:
    script(models)
    run(cli, "t1", "--no-cache")
    assert entries() == {}
    run(cli, "t2")
    assert calls(models) == (2, 2)
    assert len(entries()) == 2
    run(cli, "t3", "--no-cache")
    assert calls(models) == (3, 3)
    assert {e["thread_id"] for e in entries().values()} == {"t2"}
    both = cli("run", REQUEST, "--no-cache", "--refresh-cache")
    assert both.exit_code == 2 and "not both" in both.output


def test_a_declared_workers_version_is_its_declaration_and_prompt(tmp_path: Any) -> None:
    from foreman.workers.declared.build import specs_of
    from foreman.workers.declared.config import load

    (tmp_path / "brief.md").write_text("Answer in one sentence.")
    file = tmp_path / "workers.toml"
    file.write_text(
        '[workers.brief]\nkind = "prompt"\ncapability = "answers"\n'
        'description = "answers in one sentence"\nprompt_file = "brief.md"\nrole = "planner"\n'
        '\n[workers.tools]\nkind = "agent"\ncapability = "tools"\ndescription = "uses tools"\n'
        'tools = ["tests.support.declared_tools:miles_to_km"]\n'
    )
    brief, tools = specs_of(load(file), ())
    assert brief.cacheable and not tools.cacheable  # an agent's tools may read live data
    assert brief.model_for(Context(planner_model="scripted:planner")) == "scripted:planner"
    (tmp_path / "brief.md").write_text("Answer in two sentences.")
    assert specs_of(load(file), ())[0].version != brief.version
    file.write_text(file.read_text().replace('kind = "agent"', 'kind = "agent"\ncache = true'))
    assert specs_of(load(file), ())[1].cacheable


def test_quorum_members_neither_read_nor_write_the_cache() -> None:
    """Interchangeable sources are independent samples: identical ones must not share one."""
    from foreman.orchestration import result_cache

    spec = default_registry()["llm"]
    ctx = Context(planner_model="offline", worker_model="offline")
    job = {"subtask": {"id": "a", "worker": "llm", "objective": "o", "group": "g"}}
    assert not result_cache._eligible(job, spec, ctx)
    job["subtask"].pop("group")
    assert result_cache._eligible(job, spec, ctx)
