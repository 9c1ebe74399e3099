"""Time travel: fork a finished run, rerun one subtask on another model, re-synthesize."""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from foreman import build_graph
from foreman.orchestration.outputs import load_all
from foreman.rerun import RerunError, find_base, fork_for_rerun
from tests.conftest import HEAT_PUMPS, scripted_context


def results_after(audit: list[dict[str, Any]], kind: str) -> list[str]:
    """Subtasks with a `result` event after the last event of `kind`."""
    last = max(i for i, e in enumerate(audit) if e["kind"] == kind)
    return [e["subtask"] for e in audit[last:] if e["kind"] == "result"]


async def test_rerun_one_subtask_on_another_model_keeps_its_siblings(models) -> None:
    app = build_graph().compile(checkpointer=InMemorySaver(), store=InMemoryStore())
    thread = uuid.uuid4().hex
    config: Any = {"configurable": {"thread_id": thread}}
    ctx = scripted_context()
    first = await app.ainvoke({"request": HEAT_PUMPS}, config, context=ctx)
    before = (await app.aget_state(config)).values
    assert first["status"] == "done"
    plan = {s["id"]: s for s in before["plan"]["subtasks"]}
    assert plan["w1"]["worker"] == "writer" and plan["w1"]["inputs"] == ["r1"]
    synth_calls = len(models["synth"].calls)

    fork = await find_base(app, thread, "w1")
    assert fork.base.next == ("synthesize",)
    assert fork.subtasks == ["w1", "summary"]  # summary read w1's section
    await fork_for_rerun(app, fork, why="writer on writer2")
    new_ctx = dataclasses.replace(ctx, worker_models={"writer": "scripted:writer2"})
    second = await app.ainvoke(None, config, context=new_ctx)
    after = (await app.aget_state(config)).values

    assert second["status"] == "done"
    assert results_after(after["audit"], "rerun") == ["w1", "summary"]
    writer2 = models["writer2"].calls
    assert len(writer2) == 2 and all(c.schema == "Section" for c in writer2)
    assert len(models["synth"].calls) == synth_calls + 1  # synthesized again
    for sid in ("w1", "summary"):
        assert [a["model"] for a in after["results"][sid]["attempts"]] == ["scripted:writer2"]
    for sid in plan.keys() - {"w1", "summary"}:  # siblings: the very same records
        assert after["results"][sid] == before["results"][sid], sid
    # w1 was given r1's output again, read back from the store.
    loaded = await load_all(after["results"], app.store)
    assert loaded["w1"]["attempts"][0]["input"]["dependencies"] == ["r1"]
    # every statement of the new w1 is in the new answer (once: the summary may say it first)
    statements = re.findall(r"([^.\[\]]{20,}\.) \[", loaded["w1"]["text"])
    assert statements and all(s.strip() in second["answer"] for s in statements)

    # The original branch is still in the thread's history, answer and all.
    history = [s async for s in app.aget_state_history(config)]
    finals = [s for s in history if not s.next and s.values.get("answer")]
    assert {s.values["answer"] for s in finals} == {first["answer"], second["answer"]}
    fork_parent = [s for s in history if s.metadata.get("source") == "update"][0]
    assert (
        fork_parent.parent_config["configurable"]["checkpoint_id"]
        == (fork.base.config["configurable"]["checkpoint_id"])
    )


async def test_rerun_refuses_what_it_cannot_do(models) -> None:
    app = build_graph().compile(checkpointer=InMemorySaver())
    thread = uuid.uuid4().hex
    with pytest.raises(RerunError, match="no checkpoint before synthesis"):
        await find_base(app, thread, "w1")
    config: Any = {"configurable": {"thread_id": thread}}
    await app.ainvoke({"request": HEAT_PUMPS}, config, context=scripted_context())
    with pytest.raises(RerunError, match="no subtask 'w9'.*r1, w1"):
        await find_base(app, thread, "w9")
    with pytest.raises(RerunError, match="no checkpoint 'nope'"):
        await find_base(app, thread, "w1", checkpoint_id="nope")


def test_cli_rerun(cli) -> None:
    assert cli("run", HEAT_PUMPS, "--thread", "t1", "--quiet").exit_code == 0
    bad = cli("rerun", "t1", "w9")
    assert bad.exit_code == 2 and "no subtask 'w9'" in bad.output
    assert cli("rerun", "t1", "w1", "--durability", "often").exit_code == 2
    missing = cli("rerun", "nope", "w1")
    assert missing.exit_code == 2 and "no run with thread id 'nope'" in missing.output
    result = cli("rerun", "t1", "r2", "--model", "research=offline:again", "--quiet")
    assert result.exit_code == 0, result.output
    assert "running again: r2, w2, summary" in " ".join(result.output.split())
    md = cli("show", "t1", "--format", "md").output
    assert "rerun `r2`" in md and "research on offline:again" in md
