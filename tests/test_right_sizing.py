"""Right-sizing: steps one worker could do in one go are merged; the decision is shown."""

from __future__ import annotations

import json
from typing import Any

from foreman import build_graph
from foreman.core.schemas import Plan
from foreman.orchestration.right_sizing import merge_trivial_steps
from foreman.workers.registry import default_registry


def plan(*subtasks: dict[str, Any]) -> Plan:
    return Plan.model_validate({"goal": "g", "subtasks": list(subtasks)})


def test_a_chain_of_one_tool_free_worker_becomes_one_subtask() -> None:
    chain = plan(
        {"id": "r1", "worker": "research", "objective": "find noise figures"},
        {"id": "d1", "worker": "llm", "objective": "Draft a paragraph.", "inputs": ["r1"]},
        {"id": "p1", "worker": "llm", "objective": "Polish the draft.", "inputs": ["d1"]},
    )
    merged, notes = merge_trivial_steps(chain, default_registry())
    assert [s.id for s in merged.subtasks] == ["r1", "p1"]
    p1 = merged.subtasks[1]
    assert p1.inputs == ["r1"] and p1.objective == "Draft a paragraph. Then: Polish the draft."
    assert notes == ["d1 merged into p1: the llm worker does both in one step"]


def test_what_is_not_a_trivial_chain_stays() -> None:
    kept = plan(
        # a research step does real work with its tool, then a writer: different workers
        {"id": "r1", "worker": "research", "objective": "find"},
        {"id": "w1", "worker": "writer", "objective": "write", "inputs": ["r1"]},
        # two sections feeding one summary: the summary has two inputs
        {"id": "r2", "worker": "research", "objective": "find more"},
        {"id": "w2", "worker": "writer", "objective": "write more", "inputs": ["r2"]},
        {"id": "s", "worker": "writer", "objective": "sum up", "inputs": ["w1", "w2"]},
        # two research steps in a chain: the tool runs twice for a reason
        {"id": "r3", "worker": "research", "objective": "find a"},
        {"id": "r4", "worker": "research", "objective": "find b", "inputs": ["r3"]},
    )
    assert merge_trivial_steps(kept, default_registry()) == (kept, [])


def test_the_run_merges_and_says_so(models: Any, cli: Any) -> None:
    chain = {
        "goal": "a paragraph on heat pump noise",
        "approach": "plan",
        "rationale": "draft, then polish",
        "subtasks": [
            {"id": "d1", "worker": "llm", "objective": "Draft a paragraph on heat pump noise."},
            {"id": "p1", "worker": "llm", "objective": "Polish it.", "inputs": ["d1"]},
        ],
    }
    models["planner"].on("Plan", "<request>", chain)
    models["worker"].on("Answer", "Polish it", {"text": "Heat pumps hum at about 40 dB(A)."})
    models_given = ["--model", "planner=scripted:planner", "--model", "worker=scripted:worker"]
    result = cli(
        "run", "A paragraph on heat pump noise", "--thread", "m1", "--quiet", *models_given
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(cli("show", "m1", "--format", "json").output)
    assert [s["id"] for s in shown["plan"]["subtasks"]] == ["p1"]
    assert len(models["worker"].calls_for("Answer")) == 1  # one call, not two
    md = cli("show", "m1", "--format", "md").output
    assert "- decision: plan, 1 subtask(s): draft, then polish" in md
    assert "- merged: d1 merged into p1: the llm worker does both in one step" in md
    assert "- answer: the one result, as it is (no synthesis call)" in md


def test_the_graph_answers_a_direct_plan_without_workers() -> None:
    # the planner's own answer goes straight to the answer node: no dispatch in between
    drawn = build_graph().compile().get_graph().draw_mermaid()
    assert "plan -.-> synthesize;" in drawn
