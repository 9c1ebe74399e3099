"""Chat clients: `{"messages": [...]}` in, the plan and the answer out as AI messages."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from foreman import Context, build_graph
from foreman.orchestration.conversation import (
    ANSWER_MESSAGE,
    PLAN_MESSAGE,
    PROGRESS_MESSAGE,
    request_of,
)

REPORT = "Write a report on heat pumps: noise and running costs"


def test_the_request_is_the_last_human_message_or_the_request_field() -> None:
    assert request_of({"request": "r"}) == "r"
    assert request_of({"messages": [HumanMessage("asked")]}) == "asked"
    # a conversation that ends with the answer has no new request: the field is it
    answered = {"request": "r", "messages": [HumanMessage("r"), AIMessage("done")]}
    assert request_of(answered) == "r"
    text_parts = [{"type": "text", "text": "in"}, {"type": "text", "text": "parts"}]
    parts = HumanMessage(content=text_parts)  # type: ignore[arg-type]
    assert request_of({"messages": [parts]}) == "in\nparts"


async def test_messages_in_messages_out(thread: Any) -> None:
    app = build_graph().compile(checkpointer=InMemorySaver())
    out = await app.ainvoke({"messages": [HumanMessage(REPORT)]}, thread, context=Context())
    assert out["status"] == "done"
    human, plan, answer = out["messages"]
    assert human.content == REPORT
    assert plan.name == PLAN_MESSAGE and "- r1 · research" in plan.content
    assert answer.name == ANSWER_MESSAGE and answer.content == out["answer"]
    assert app.get_state(thread).values["request"] == REPORT  # the API and CLI field too


async def test_a_request_field_still_works_and_gets_the_answer_as_a_message(thread: Any) -> None:
    app = build_graph().compile(checkpointer=InMemorySaver())
    out = await app.ainvoke({"request": "What is 2+2?"}, thread, context=Context())
    assert out["status"] == "unanswered"  # offline declines it, and says so
    [answer] = out["messages"]
    assert answer.type == "ai" and "Offline mode cannot answer this" in answer.content


async def test_each_new_message_is_the_next_request_and_unchanged_work_is_kept(thread: Any) -> None:
    app = build_graph().compile(checkpointer=InMemorySaver())
    await app.ainvoke({"messages": [HumanMessage(REPORT)]}, thread, context=Context())
    first = app.get_state(thread).values
    out = await app.ainvoke(
        {"messages": [HumanMessage("How long do heat pumps last?")]}, thread, context=Context()
    )
    values = app.get_state(thread).values
    assert out["status"] == "done" and "15-20 years" in out["answer"]
    assert values["request"] == "How long do heat pumps last?" and values["plan_version"] == 2
    kinds = [(m.type, getattr(m, "name", None)) for m in out["messages"]]
    assert kinds == [
        ("human", None), ("ai", PLAN_MESSAGE), ("ai", ANSWER_MESSAGE),
        ("human", None), ("ai", PLAN_MESSAGE), ("ai", ANSWER_MESSAGE),
    ]  # fmt: skip
    # the third turn asks the first question again: its subtasks are not run again
    await app.ainvoke({"messages": [HumanMessage(REPORT)]}, thread, context=Context())
    third = app.get_state(thread).values
    for sid, rec in first["results"].items():
        assert third["results"][sid]["attempts"] == rec["attempts"], sid
    assert third["plan_version"] == 3


HEAT_PUMP_REPORT = (
    "Write a report on residential heat pumps: running costs, noise and cold-climate performance."
)


def _section(answer: str, heading: str) -> str:
    return answer.split(f"## {heading}\n")[1].split("\n## ")[0]


async def _turn(app: Any, thread: Any, message: str) -> tuple[dict[str, Any], list[str]]:
    """Send one chat message; the answer, and the subtasks that ran (new or re-run) for it."""
    before = (await app.aget_state(thread)).values.get("results", {})
    out = await app.ainvoke({"messages": [HumanMessage(message)]}, thread, context=Context())
    after = (await app.aget_state(thread)).values
    ran = sorted(
        sid
        for sid, rec in after["results"].items()
        if sid not in before or rec["fingerprint"] != before[sid]["fingerprint"]
    )
    return out, ran


async def test_follow_ups_revise_the_previous_plan_and_answer_over_several_turns(
    thread: Any,
) -> None:
    app = build_graph().compile(checkpointer=InMemorySaver())
    first, ran = await _turn(app, thread, HEAT_PUMP_REPORT)
    assert first["status"] == "done" and len(ran) == 7
    noise_before = _section(first["answer"], "Noise")
    kept = dict((await app.aget_state(thread)).values["results"])

    # expand: only the noise research, its section and the summary run again
    expanded, ran = await _turn(app, thread, "Expand the noise section.")
    state = (await app.aget_state(thread)).values
    assert expanded["status"] == "done" and ran == ["r2", "summary", "w2"]
    assert [s["id"] for s in state["plan"]["subtasks"]] == [
        "r1", "w1", "r2", "w2", "r3", "w3", "summary",
    ]  # fmt: skip
    for sid in ("r1", "w1", "r3", "w3"):
        assert state["results"][sid] == kept[sid], sid  # reused as it was
    noise_after = _section(expanded["answer"], "Noise")
    assert noise_after.count("[noise-and-siting#") > noise_before.count("[noise-and-siting#")
    assert len(noise_after) > 1.5 * len(noise_before)
    assert "\n# Residential heat pumps\n" in expanded["answer"]  # the report, revised
    assert "## Running costs" in expanded["answer"]

    # add: a new section, researched and written; the summary takes it in
    added, ran = await _turn(app, thread, "Also add a section on installation.")
    assert ran == ["r4", "summary", "w4"]
    installation = _section(added["answer"], "Installation")
    assert "install" in installation.lower() and "#p" in installation  # cited

    # leave out: the section goes, nothing but the summary runs again
    trimmed, ran = await _turn(app, thread, "Leave out the running costs section.")
    assert ran == ["summary"]
    assert "## Running costs" not in trimmed["answer"] and "## Noise" in trimmed["answer"]
    assert _section(trimmed["answer"], "Noise") == _section(added["answer"], "Noise")

    # something else entirely is planned afresh, not forced into the report
    other, ran = await _turn(app, thread, "How long do heat pumps last?")
    plan = (await app.aget_state(thread)).values["plan"]
    assert [s["worker"] for s in plan["subtasks"]] == ["research"]
    assert other["status"] == "done" and "15-20 years" in other["answer"]
    history = (await app.aget_state(thread)).values["plan_history"]
    assert [h["source"] for h in history] == ["planner", "turn", "turn", "turn", "turn"]


async def test_a_model_planner_gets_the_answered_plan_as_a_draft(
    thread: Any, models: dict[str, Any]
) -> None:
    from tests.conftest import scripted_context

    app = build_graph().compile(checkpointer=InMemorySaver())
    ctx = scripted_context()
    await app.ainvoke({"messages": [HumanMessage(HEAT_PUMP_REPORT)]}, thread, context=ctx)
    await app.ainvoke(
        {"messages": [HumanMessage("Expand the noise section.")]}, thread, context=ctx
    )
    first, follow_up = models["planner"].calls_for("Plan")
    assert "<current_plan>none</current_plan>" in first.prompt
    assert '"id": "r2"' in follow_up.prompt.rsplit("<current_plan>", 1)[1]
    accepted = follow_up.prompt.rsplit("<accepted>", 1)[1].split("</accepted>")[0]
    assert set(accepted.split(", ")) == {"r1", "w1", "r2", "w2", "r3", "w3", "summary"}
    assert "<asked>" in follow_up.prompt.rsplit("<previous>", 1)[1]  # the turn before, as data


async def test_a_chat_sees_the_subtasks_finish_while_the_run_goes_on(thread: Any) -> None:
    """Progress streams as one message a chat updates in place; the state keeps none of it."""
    app = build_graph().compile(checkpointer=InMemorySaver())
    seen: list[str] = []
    async for message, _meta in app.astream(
        {"messages": [HumanMessage(REPORT)]}, thread, context=Context(), stream_mode="messages"
    ):
        if getattr(message, "name", None) == PROGRESS_MESSAGE:
            assert message.id == "foreman-progress-v1"
            seen.append(message.content)
    subtasks = len(app.get_state(thread).values["plan"]["subtasks"])
    assert len(seen) == subtasks  # once per finished subtask
    assert seen[0].startswith(f"Working: 1 of {subtasks} subtasks finished")
    assert seen[-1].startswith(f"Working: {subtasks} of {subtasks} subtasks finished")
    assert "- r1 · research: done" in seen[-1] and "…" not in seen[-1]
    names = [getattr(m, "name", None) for m in app.get_state(thread).values["messages"]]
    assert PROGRESS_MESSAGE not in names
