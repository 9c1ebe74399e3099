"""Large worker outputs go to the store once, by content; state keeps keys; answers unchanged."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from foreman import Context, build_graph
from foreman.orchestration.outputs import (
    INLINE_MAX_BYTES,
    OUTPUTS,
    MissingOutput,
    content_key,
    forget_thread,
    load_all,
    stow,
)
from tests.conftest import HEAT_PUMPS


def record(sid: str, text: str, output: dict[str, Any] | None) -> dict[str, Any]:
    attempt = {"n": 1, "output": output, "verdict": "accept"}
    return {"id": sid, "text": text, "output": output, "attempts": [attempt], "status": "accepted"}


async def run(app: Any, scheduler: str) -> dict[str, Any]:
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    await app.ainvoke({"request": HEAT_PUMPS}, config, context=Context(scheduler=scheduler))
    return dict((await app.aget_state(config)).values)


@pytest.mark.parametrize("scheduler", ["dataflow", "waves"])
async def test_a_run_with_a_store_keeps_outputs_out_of_state_and_answers_the_same(
    scheduler: str,
) -> None:
    inline = await run(build_graph().compile(checkpointer=InMemorySaver()), scheduler)
    store = InMemoryStore()
    stowed = await run(build_graph().compile(checkpointer=InMemorySaver(), store=store), scheduler)

    assert stowed["status"] == inline["status"] == "done"
    # Writers read their research inputs and the synthesizer every section through the store.
    assert stowed["answer"] == inline["answer"]
    assert not any(r.get("refs") for r in inline["results"].values())
    for sid, rec in stowed["results"].items():
        big = len(json.dumps(inline["results"][sid]["output"])) > INLINE_MAX_BYTES
        if not big:  # a small output stays in the checkpoint
            assert not rec.get("refs") and rec["output"] == inline["results"][sid]["output"]
            continue
        assert set(rec["refs"]) >= {"output", "attempts/0/output"}, sid
        assert rec["output"] is None and rec["text"] in ("", inline["results"][sid]["text"])
        whole = (await load_all({sid: rec}, store))[sid]
        assert whole["output"] == inline["results"][sid]["output"]
        assert whole["text"] == inline["results"][sid]["text"]
        assert not whole["refs"]
    in_state = len(json.dumps(stowed["results"]))
    assert in_state < len(json.dumps(inline["results"])) / 2  # records keep ids, usage, verdicts


async def test_identical_content_is_stored_once_and_small_fields_stay_inline() -> None:
    store = InMemoryStore()
    big = {"markdown": "x" * (INLINE_MAX_BYTES + 10)}
    rec = record("a", "short text", big)
    rec["attempts"].append({"n": 2, "output": big, "verdict": "accept"})
    out = await stow(rec, store)  # type: ignore[arg-type]
    key, _ = content_key(big)
    assert out["refs"] == {"output": key, "attempts/0/output": key, "attempts/1/output": key}
    assert out["text"] == "short text"  # under the threshold: stays in the checkpoint
    assert [i.key for i in await store.asearch(OUTPUTS, limit=10)] == [key]
    assert rec["output"] == big  # the caller's record is not modified


async def test_a_missing_output_is_a_clear_error() -> None:
    store = InMemoryStore()
    rec = await stow(record("w1", "y" * 5000, None), store)  # type: ignore[arg-type]
    await store.adelete(OUTPUTS, rec["refs"]["text"])
    with pytest.raises(MissingOutput, match="text of subtask 'w1'.*no longer in the store"):
        await load_all({"w1": rec}, store)
    with pytest.raises(MissingOutput, match="without one"):
        await load_all({"w1": rec}, None)


async def test_forgetting_a_thread_keeps_outputs_another_thread_uses() -> None:
    store = InMemoryStore()
    shared, own = "s" * 3000, "o" * 3000
    for thread, texts in (("t.1", [shared, own]), ("t2", [shared])):
        app_config = {"configurable": {"thread_id": thread}}
        for i, text in enumerate(texts):
            await _stow_in_thread(store, app_config, record(f"x{i}", text, None))
    assert await forget_thread(store, "t.1") == 1  # `own`; `shared` is still used by t2
    assert await store.aget(OUTPUTS, content_key(shared)[0]) is not None
    assert await store.aget(OUTPUTS, content_key(own)[0]) is None
    assert await forget_thread(store, "t2") == 1
    assert not await store.asearch(OUTPUTS, limit=10)


async def _stow_in_thread(store: InMemoryStore, config: dict[str, Any], rec: Any) -> None:
    """Stow inside a one-node graph run, as a worker's record is, to get the thread's id."""
    from langgraph.graph import StateGraph

    async def node(state: dict[str, Any]) -> dict[str, Any]:
        await stow(rec)
        return {"done": True}

    builder = StateGraph(dict)
    builder.add_node("node", node)
    builder.set_entry_point("node")
    await builder.compile(store=store).ainvoke({"done": False}, config)


@pytest.mark.parametrize(
    "call, use_store, bound", [("tool", True, 3.0), ("subgraph", True, 3.0), ("tool", False, None)]
)
async def test_report12_checkpoint_bytes_stay_within_3x_of_worker_output(
    tmp_path, call: str, use_store: bool, bound: float | None
) -> None:
    """The `make bench` size measurement, on SQLite: ≤ 3x with the store, far more without.

    Graph workers too: by default (`worker_durability="exit"`) a successful attempt's state
    is not kept beside the run's.
    """
    import bench.durability as bd
    from bench.simulation import PLANS, BenchChatModel, dag_plan, load_dags
    from foreman.core.models import register_provider, unregister_provider

    dags = load_dags()
    PLANS["report12"] = dag_plan(dags["report12"], 0.0)
    register_provider("bench", lambda name: BenchChatModel(model_name=name or "x"))
    try:
        row = await bd.one_run(
            f"sqlite:{tmp_path / 'size.sqlite'}", bd.sized_registry(4.0, call), "report12", 12,
            "sync", use_store,
        )  # fmt: skip
    finally:
        unregister_provider("bench")
    ratio = row["checkpoint_bytes"] / row["worker_output_bytes"]
    assert row["worker_output_bytes"] > 12 * 4000
    if bound is not None:
        assert ratio <= bound, row
        assert row["store_bytes"] >= row["worker_output_bytes"]  # the outputs went somewhere
    else:
        assert ratio > 3 * bd.SIZE_TARGET, row  # what the store saves
