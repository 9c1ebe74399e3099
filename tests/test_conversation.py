"""Chat clients: `{"messages": [...]}` in, the plan and the answer out as AI messages."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from foreman import Context, build_graph
from foreman.orchestration.conversation import ANSWER_MESSAGE, PLAN_MESSAGE, request_of

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
