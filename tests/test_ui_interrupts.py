"""Interrupts in the UI schemas: what Agent Chat UI and Agent Inbox render, and their answers.

Two UI generations, both offered on every interrupt (`graph/hitl.py`):
- langchain's HITLRequest (Agent Chat UI since its "interrupt schema 1.0"), answered with
  `{"decisions": [{"type": "approve" | "edit" | "reject", ...}]}`;
- the earlier HumanInterrupt (Agent Inbox, `npx create-agent-chat-app`), answered with
  `[{"type": "accept" | "edit" | "response" | "ignore", "args": ...}]`.
Foreman's own payloads stay accepted (tests/test_interrupts.py).
"""

import json
from types import SimpleNamespace
from typing import Any

import pytest
from langgraph.types import Command

from foreman.errors import UsageError
from foreman.orchestration.hitl import AnswerError, from_ui
from foreman.questions import resume_value
from tests.conftest import HEAT_PUMPS, scripted_context
from tests.test_interrupts import ASK, NO_ANSWER, _failing_writer


def pending(app, thread):
    return [i.value for i in app.get_state(thread).interrupts]


def renders_hitl(value: Any) -> bool:
    """Agent Chat UI's `isAgentInboxInterruptSchema` (src/lib/agent-inbox-interrupt.ts)."""
    requests, configs = value.get("action_requests"), value.get("review_configs")
    return (
        isinstance(requests, list)
        and bool(requests)
        and all(
            isinstance(r.get("name"), str) and isinstance(r.get("args"), dict) for r in requests
        )
        and isinstance(configs, list)
        and bool(configs)
        and all(
            isinstance(c.get("action_name"), str) and isinstance(c.get("allowed_decisions"), list)
            for c in configs
        )
    )


def renders_human_interrupt(value: Any) -> bool:
    """The same check before schema 1.0 (create-agent-chat-app 0.1.6, Agent Inbox)."""
    config = value.get("config")
    return (
        isinstance(value.get("action_request"), dict)
        and isinstance(config, dict)
        and {"allow_respond", "allow_accept", "allow_edit", "allow_ignore"} <= set(config)
    )


# --- the mapping alone -----------------------------------------------------------------

EDITED = {"goal": "g", "subtasks": '[{"id": "r1", "worker": "research", "objective": "o"}]'}


@pytest.mark.parametrize(
    ("kind", "answer", "payload"),
    [
        ("plan_review", {"decisions": [{"type": "approve"}]}, {"action": "approve"}),
        ("plan_review", [{"type": "accept", "args": None}], {"action": "approve"}),
        ("plan_review", {"type": "approve"}, {"action": "approve"}),
        (
            "plan_review",
            {"decisions": [{"type": "reject", "message": "shorter"}]},
            {"action": "reject", "feedback": "shorter"},
        ),
        (
            "plan_review",
            [{"type": "response", "args": "shorter"}],
            {"action": "reject", "feedback": "shorter"},
        ),
        (
            "plan_review",
            {"decisions": [{"type": "edit", "edited_action": {"name": "x", "args": EDITED}}]},
            {
                "action": "edit",
                "plan": {"goal": "g", "subtasks": [json.loads(EDITED["subtasks"])[0]]},
            },
        ),
        (
            "plan_review",
            [{"type": "edit", "args": {"action": "review_plan", "args": {"goal": "g"}}}],
            {"action": "edit", "plan": {"goal": "g"}},
        ),
        ("clarification", [{"type": "response", "args": "gas"}], {"answer": "gas"}),
        (
            "clarification",
            {"decisions": [{"type": "respond", "message": "gas"}]},
            {"answer": "gas"},
        ),
        (
            "clarification",
            {
                "decisions": [
                    {"type": "edit", "edited_action": {"name": "q", "args": {"answer": "gas"}}}
                ]
            },
            {"answer": "gas"},
        ),
        ("escalation", {"decisions": [{"type": "approve"}]}, {"action": "retry"}),
        ("escalation", [{"type": "ignore", "args": None}], {"action": "skip"}),
        (
            "escalation",
            {"decisions": [{"type": "reject", "message": "stop"}]},
            {"action": "abort", "reason": "stop"},
        ),
        (
            "escalation",
            [
                {
                    "type": "edit",
                    "args": {
                        "action": "a",
                        "args": {"action": "supply", "result": "t", "model": "", "subtask": "w2"},
                    },
                }
            ],
            {"action": "supply", "result": "t"},
        ),  # fmt: skip
        # Foreman's own payloads pass through unchanged
        ("plan_review", {"action": "approve"}, {"action": "approve"}),
        ("clarification", "gas", "gas"),
        ("clarification", {"answer": "gas"}, {"answer": "gas"}),
        ("escalation", {"action": "skip"}, {"action": "skip"}),
    ],
)
def test_ui_answers_read_as_foreman_payloads(kind, answer, payload):
    assert from_ui(kind, answer) == payload


@pytest.mark.parametrize(
    ("kind", "answer", "why"),
    [
        ("plan_review", {"decisions": [{"type": "approve"}, {"type": "approve"}]}, "one decision"),
        ("plan_review", {"decisions": []}, "one decision"),
        ("plan_review", {"decisions": [{"type": "maybe"}]}, "needs a type"),
        ("plan_review", [{"type": "ignore", "args": None}], "does not answer review_plan"),
        ("plan_review", {"decisions": [{"type": "edit"}]}, "edited action's args"),
        (
            "plan_review",
            {"decisions": [{"type": "edit", "edited_action": {"args": {"subtasks": "[{"}}}]},
            "subtasks is not JSON",
        ),
        ("clarification", {"decisions": [{"type": "approve"}]}, "does not answer answer_question"),
    ],
)
def test_ui_answers_that_cannot_be_used_say_why(kind, answer, why):
    with pytest.raises(AnswerError, match=why):
        from_ui(kind, answer)


def test_cli_resume_checks_ui_answers_too():
    intr = SimpleNamespace(id="i1", value={"kind": "plan_review", "expected": "..."})
    ui = json.dumps({"decisions": [{"type": "approve"}]})
    assert resume_value([intr], ui) == {"decisions": [{"type": "approve"}]}
    with pytest.raises(UsageError, match="one decision expected"):
        resume_value([intr], json.dumps({"decisions": []}))
    with pytest.raises(UsageError, match="feedback"):
        resume_value([intr], json.dumps([{"type": "response", "args": ""}]))


# --- through the graph -----------------------------------------------------------------


async def test_plan_review_is_offered_in_both_ui_schemas(models, app, thread):
    ctx = scripted_context(review_plan=True)
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    [value] = pending(app, thread)
    assert value["kind"] == "plan_review" and value["error"] is None  # what the CLI reads
    assert renders_hitl(value) and renders_human_interrupt(value)
    [request] = value["action_requests"]
    assert request["name"] == "review_plan" and request["args"] == value["plan"]
    assert value["review_configs"] == [
        {"action_name": "review_plan", "allowed_decisions": ["approve", "edit", "reject"]}
    ]
    assert value["action_request"] == {"action": "review_plan", "args": value["plan"]}
    assert value["config"] == {
        "allow_accept": True, "allow_edit": True, "allow_respond": True, "allow_ignore": False
    }  # fmt: skip
    assert value["description"] == request["description"]
    assert "`w2` writer (after r2)" in value["description"]


async def test_plan_review_answered_from_agent_chat_ui(models, app, thread):
    ctx = scripted_context(review_plan=True)
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    reject = {"decisions": [{"type": "reject", "message": "drop running costs"}]}
    await app.ainvoke(Command(resume=reject), thread, context=ctx)
    [review] = pending(app, thread)
    assert review["version"] == 2
    assert "drop running costs" in models["planner"].calls_for("Plan")[-1].prompt
    # An edit as the UI sends it: the args it shows, the edited one as text.
    args = dict(review["action_requests"][0]["args"])
    kept = args["subtasks"][:2]
    args["subtasks"] = json.dumps(kept)
    edit = {"type": "edit", "edited_action": {"name": "review_plan", "args": args}}
    out = await app.ainvoke(Command(resume={"decisions": [edit]}), thread, context=ctx)
    values = app.get_state(thread).values
    assert out["status"] == "done"
    assert sorted(values["results"]) == sorted(s["id"] for s in kept)
    assert [p["source"] for p in values["plan_history"]] == ["planner", "planner", "human_edit"]


async def test_plan_review_answered_from_agent_inbox(models, app, thread):
    ctx = scripted_context(review_plan=True)
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    await app.ainvoke(Command(resume=[{"type": "ignore", "args": None}]), thread, context=ctx)
    [again] = pending(app, thread)
    assert "'ignore' does not answer review_plan" in again["error"]
    assert again["description"].startswith("**Your last answer was not used:**")
    accept = [{"type": "accept", "args": again["action_request"]}]
    out = await app.ainvoke(Command(resume=accept), thread, context=ctx)
    assert out["status"] == "done"
    [event] = [e for e in app.get_state(thread).values["audit"] if e["kind"] == "plan_review"]
    assert event["detail"]["action"] == "approve"


async def test_a_question_answered_from_a_ui(models, app, thread):
    models["worker"].on("ResearchFindings", (NO_ANSWER, "running costs"), ASK)
    ctx = scripted_context()
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    [q] = pending(app, thread)
    assert renders_hitl(q) and renders_human_interrupt(q)
    assert q["action_requests"][0]["args"]["question"] == "Which aspect?"
    assert q["config"]["allow_respond"] and not q["config"]["allow_accept"]
    out = await app.ainvoke(
        Command(resume=[{"type": "response", "args": "electricity prices"}]), thread, context=ctx
    )
    assert out["status"] == "done"
    assert app.get_state(thread).values["clarifications"] == {q["subtask"]: "electricity prices"}


async def test_an_escalation_answered_from_a_ui(models, app, thread):
    _failing_writer(models)
    ctx = scripted_context(max_replans=0)
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    [esc] = pending(app, thread)
    assert renders_hitl(esc) and renders_human_interrupt(esc) and esc["config"]["allow_ignore"]
    assert esc["action_requests"][0]["args"]["failure"] == esc["failure"]
    abort = {"decisions": [{"type": "reject", "message": "not worth it"}]}
    out = await app.ainvoke(Command(resume=abort), thread, context=ctx)
    assert out["status"] == "aborted" and "not worth it" in out["answer"]
