"""End to end: the real `langgraph dev` server runs the `foreman` graph for the LangGraph SDK.

Runs: plan review and a bad answer, streamed progress from subgraphs, the forms Studio
renders, assistants with their own `Context`, and parallel questions answered in one resume.
The server and its loopback models are fixtures of `tests.support.server_fixtures`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from langgraph_sdk.client import LangGraphClient

from tests.conftest import HEAT_PUMPS
from tests.support.engine_models import EngineResponder
from tests.support.langgraph_dev import DevServer
from tests.support.server_fixtures import (
    CITATION,
    OFFLINE,
    RUN_TIMEOUT_S,
    attempt_models,
    run_to_end,
    subtask_of,
)

pytestmark = pytest.mark.server


async def test_plan_review_bad_answer_then_approve(
    client: LangGraphClient, dev_server: DevServer, new_thread: Callable[[], Awaitable[str]]
) -> None:
    thread_id = await new_thread()

    await run_to_end(
        client,
        dev_server,
        thread_id,
        input={"request": HEAT_PUMPS},
        context={**OFFLINE, "review_plan": True},
    )
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["review_plan"]
    assert len(state["interrupts"]) == 1
    first = state["interrupts"][0]
    review = first["value"]
    assert review["kind"] == "plan_review"
    assert review["error"] is None
    subtasks = review["plan"]["subtasks"]
    assert subtasks and all(s["id"] and s["worker"] for s in subtasks)

    # A resume value of the wrong shape does not fail the run: it asks again, with why.
    await run_to_end(client, dev_server, thread_id, command={"resume": {"action": "maybe"}})
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["review_plan"]
    assert len(state["interrupts"]) == 1
    again = state["interrupts"][0]
    assert again["id"] != first["id"]
    assert again["value"]["kind"] == "plan_review"
    assert again["value"]["plan"] == review["plan"]
    error = again["value"]["error"]
    assert isinstance(error, str) and error.strip()
    assert "not understood" in error and "approve" in error

    await run_to_end(client, dev_server, thread_id, command={"resume": {"action": "approve"}})
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "idle"
    state = await client.threads.get_state(thread_id)
    assert state["next"] == [] and not state["interrupts"]
    values = state["values"]
    assert values["status"] == "done", values.get("error")
    assert "Offline extractive mode" in values["answer"]
    assert CITATION.search(values["answer"]), values["answer"][:2000]
    actions = [e["detail"].get("action") for e in values["audit"] if e["kind"] == "plan_review"]
    assert actions == ["approve"]

    history = await client.threads.get_history(thread_id, limit=100)
    assert len(history) >= 5
    assert history[0]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    assert any("review_plan" in h["next"] for h in history)
    assert any("synthesize" in h["next"] for h in history)


async def test_stream_updates_and_custom_events_from_subgraphs(
    client: LangGraphClient, dev_server: DevServer, new_thread: Callable[[], Awaitable[str]]
) -> None:
    thread_id = await new_thread()
    parts: list[tuple[str, Any]] = []
    async with asyncio.timeout(RUN_TIMEOUT_S):
        async for part in client.runs.stream(
            thread_id,
            "foreman",
            input={"request": HEAT_PUMPS},
            context=OFFLINE,
            stream_mode=["updates", "custom"],
            stream_subgraphs=True,
        ):
            parts.append((part.event, part.data))

    errors = [data for event, data in parts if event == "error"]
    assert not errors, f"{errors}\n{dev_server.log()}"
    modes = {event.split("|")[0] for event, _ in parts}
    assert {"metadata", "updates", "custom"} <= modes
    # stream_subgraphs: events from inside the dispatch node carry a namespace.
    assert any(event.startswith("custom|dispatch:") for event, _ in parts)
    assert any(event.startswith("updates|dispatch:") for event, _ in parts)

    custom = [data for event, data in parts if event.split("|")[0] == "custom"]
    assert custom and all(isinstance(d, dict) and "foreman" in d for d in custom)
    kinds = {d["foreman"] for d in custom}
    assert {"phase", "plan", "subtask", "attempt", "verdict"} <= kinds
    plans = [d for d in custom if d["foreman"] == "plan"]
    assert plans and plans[0]["subtasks"]
    planned = {s["id"] for s in plans[0]["subtasks"]}
    statuses: dict[str, set[str]] = {}
    for d in custom:
        if d["foreman"] == "subtask":
            statuses.setdefault(d["id"], set()).add(d["status"])
    assert set(statuses) == planned
    assert all({"running", "accepted"} <= s for s in statuses.values()), statuses

    root_updates = [data for event, data in parts if event == "updates"]
    assert any("synthesize" in u for u in root_updates)

    state = await client.threads.get_state(thread_id)
    assert state["next"] == []
    assert state["values"]["status"] == "done", state["values"].get("error")
    assert CITATION.search(state["values"]["answer"])


async def test_the_answer_streams_as_text_tokens_to_an_sdk_client(
    client: LangGraphClient,
    dev_server: DevServer,
    new_thread: Callable[[], Awaitable[str]],
    responder: EngineResponder,
) -> None:
    # The synthesizer on a `local:` model: ChatOpenAI in the server streams from the loopback
    # server, and the server streams the chunks on as `messages-tuple` events.
    thread_id = await new_thread()
    answer: list[str] = []
    chunk_ids: set[str] = set()
    structured = 0
    async with asyncio.timeout(RUN_TIMEOUT_S):
        async for part in client.runs.stream(
            thread_id,
            "foreman",
            input={"request": HEAT_PUMPS},
            context={**OFFLINE, "synthesizer_model": "local:synth"},
            stream_mode="messages-tuple",
        ):
            assert part.event != "error", f"{part.data}\n{dev_server.log()}"
            if part.event != "messages":
                continue
            message, metadata = part.data
            tags = metadata.get("tags") or []
            if "foreman:answer" in tags:  # how a chat client keeps the answer's tokens
                assert message["type"] == "AIMessageChunk" and not message["tool_call_chunks"]
                answer.append(message["content"])
                chunk_ids.add(message["id"])
            elif "foreman:structured" in tags:
                structured += 1
    values = (await client.threads.get_state(thread_id))["values"]
    assert values["status"] == "done", values.get("error")
    text = "".join(answer)
    assert len([a for a in answer if a]) > 20 and len(chunk_ids) == 1
    assert text.strip() and text.strip() in values["answer"]
    assert structured  # the offline planner's plan, a whole message, tagged structured
    assert values["messages"][-1]["content"] == values["answer"]
    assert any(c.model == "synth" and c.schema is None for c in responder.calls)


async def test_studio_reads_the_context_form_and_the_graph(client: LangGraphClient) -> None:
    [assistant] = await client.assistants.search(graph_id="foreman", limit=1)
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    fields = schemas["context_schema"]["properties"]
    assert {"planner_model", "worker_models", "max_parallel", "review_plan"} <= set(fields)
    assert all(f.get("description") for f in fields.values()), fields
    drawn = await client.assistants.get_graph(assistant["assistant_id"])
    nodes = {n["id"] for n in drawn["nodes"]}
    assert {"plan", "review_plan", "dispatch", "validate", "clarify", "synthesize"} <= nodes


async def test_studio_shows_the_workers_and_an_attempts_state(
    client: LangGraphClient, dev_server: DevServer, new_thread: Callable[[], Awaitable[str]]
) -> None:
    [assistant] = await client.assistants.search(graph_id="foreman", limit=1)
    assistant_id = assistant["assistant_id"]
    subgraphs = await client.assistants.get_subgraphs(assistant_id, recurse=True)
    for scope in ("dispatch|run_subtask", "worker"):
        assert {f"{scope}|{w}" for w in ("research", "writer", "llm", "policy")} <= set(subgraphs)
    research = subgraphs["dispatch|run_subtask|research"]
    assert {"input", "output", "passages"} <= set(research["state_schema"]["properties"])
    drawn = await client.assistants.get_graph(assistant_id, xray=True)
    nodes = {n["id"] for n in drawn["nodes"]}
    assert {"dispatch:run_subtask:research:search_corpus", "worker:writer:write_section"} <= nodes

    # An attempt's namespace comes with its streamed events; its state reads back there.
    thread_id = await new_thread()
    namespaces: set[str] = set()
    async with asyncio.timeout(RUN_TIMEOUT_S):
        async for part in client.runs.stream(
            thread_id,
            "foreman",
            input={"request": HEAT_PUMPS},
            context={**OFFLINE, "worker_durability": "async"},
            stream_mode=["updates"],
            stream_subgraphs=True,
        ):
            assert part.event != "error", f"{part.data}\n{dev_server.log()}"
            namespaces.add(part.event.partition("|")[2])
    ns = next(n for n in sorted(namespaces) if re.search(r"\|research:[0-9a-f-]+$", n))
    state = await client.threads.get_state(thread_id, checkpoint={"checkpoint_ns": ns})
    assert state["next"] == [] and state["values"]["passages"]
    assert state["values"]["input"]["subtask"]["worker"] == "research"
    assert state["values"]["output"]["status"] == "done"
    history = await client.threads.get_history(thread_id, checkpoint={"checkpoint_ns": ns})
    assert [h["next"] for h in history][::-1][1:] == [
        ["search_corpus"],
        ["search_web"],
        ["extract_findings"],
        [],
    ]


async def test_studio_reads_the_input_and_output_forms(client: LangGraphClient) -> None:
    [assistant] = await client.assistants.search(graph_id="foreman", limit=1)
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    assert schemas["input_schema"] is not None
    assert schemas["output_schema"] is not None
    assert set(schemas["input_schema"]["properties"]) == {"request", "messages", "sender"}
    assert {"answer", "status", "error", "messages"} <= set(schemas["output_schema"]["properties"])


async def test_a_chat_sends_messages_and_gets_the_answer_as_the_last_ai_message(
    client: LangGraphClient, dev_server: DevServer, new_thread: Callable[[], Awaitable[str]]
) -> None:
    """What LangGraph's chat clients send: `{"messages": [...]}`, two turns on one thread."""
    thread_id = await new_thread()
    first = {"messages": [{"type": "human", "content": HEAT_PUMPS}]}
    await run_to_end(client, dev_server, thread_id, input=first, context=OFFLINE)
    state = await client.threads.get_state(thread_id)
    messages = state["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "ai"]
    assert messages[-1]["content"] == state["values"]["answer"]
    assert state["values"]["status"] == "done"
    second = {"messages": [{"type": "human", "content": "What is 2+2?"}]}
    await run_to_end(client, dev_server, thread_id, input=second, context=OFFLINE)
    values = (await client.threads.get_state(thread_id))["values"]
    assert [m["type"] for m in values["messages"]] == ["human", "ai", "ai", "human", "ai"]
    assert values["request"] == "What is 2+2?" and values["status"] == "unanswered"
    assert "Offline mode cannot answer this" in values["messages"][-1]["content"]


async def test_a_chat_follow_up_revises_the_report_and_reruns_only_what_it_changes(
    client: LangGraphClient, dev_server: DevServer, new_thread: Callable[[], Awaitable[str]]
) -> None:
    thread_id = await new_thread()
    for text in (HEAT_PUMPS, "Go deeper on running costs."):
        turn = {"messages": [{"type": "human", "content": text}]}
        await run_to_end(client, dev_server, thread_id, input=turn, context=OFFLINE)
        if text == HEAT_PUMPS:
            first = (await client.threads.get_state(thread_id))["values"]
    values = (await client.threads.get_state(thread_id))["values"]
    assert values["status"] == "done" and values["plan_history"][-1]["source"] == "turn"
    again = sorted(
        sid
        for sid, rec in values["results"].items()
        if rec["fingerprint"] != first["results"][sid]["fingerprint"]
    )
    assert again == ["r2", "summary", "w2"]  # running costs, in depth; how they work is kept
    assert values["results"]["r1"] == first["results"]["r1"]
    assert "in depth" in next(s for s in values["plan"]["subtasks"] if s["id"] == "r2")["objective"]
    assert [m["type"] for m in values["messages"]][-3:] == ["human", "ai", "ai"]


async def test_a_chat_ui_answers_the_plan_review_in_its_own_schema(
    client: LangGraphClient, dev_server: DevServer, new_thread: Callable[[], Awaitable[str]]
) -> None:
    """What Agent Chat UI does: an assistant with plan review on, messages in, decisions back."""
    assistant = await client.assistants.create(
        graph_id="foreman", context={**OFFLINE, "review_plan": True}, name="reviewed"
    )
    try:
        thread_id = await new_thread()
        first = {"messages": [{"type": "human", "content": HEAT_PUMPS}]}
        await run_to_end(client, dev_server, thread_id, assistant["assistant_id"], input=first)
        state = await client.threads.get_state(thread_id)
        [intr] = state["interrupts"]
        value = intr["value"]
        assert value["kind"] == "plan_review"
        assert value["action_requests"][0]["args"]["subtasks"] == value["plan"]["subtasks"]
        assert value["review_configs"][0]["allowed_decisions"] == ["approve", "edit", "reject"]
        assert value["action_request"]["action"] == "review_plan" and value["config"]
        assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai"]  # the plan
        await run_to_end(
            client,
            dev_server,
            thread_id,
            assistant["assistant_id"],
            command={"resume": {"decisions": [{"type": "approve"}]}},
        )
    finally:
        await client.assistants.delete(assistant["assistant_id"])
    values = (await client.threads.get_state(thread_id))["values"]
    assert values["status"] == "done", values.get("error")
    assert [m["type"] for m in values["messages"]] == ["human", "ai", "ai"]
    assert CITATION.search(values["messages"][-1]["content"])


async def test_assistants_run_with_their_own_context(
    client: LangGraphClient,
    dev_server: DevServer,
    new_thread: Callable[[], Awaitable[str]],
    responder: EngineResponder,
) -> None:
    alpha_ctx = {
        **OFFLINE,
        "worker_model": "local:alpha-worker",
        "synthesizer_model": "local:alpha-synth",
        "max_parallel": 1,
    }
    beta_ctx = {
        **OFFLINE,
        "worker_model": "local:beta-worker",
        "worker_models": {"writer": "local:beta-writer"},
        "validator_model": "local:beta-judge",
        "judge": True,
    }
    responder.latency_s = 0.2  # long enough for parallel requests to overlap
    alpha = await client.assistants.create(graph_id="foreman", context=alpha_ctx, name="alpha")
    beta = await client.assistants.create(graph_id="foreman", context=beta_ctx, name="beta")
    try:
        assert (await client.assistants.get(alpha["assistant_id"]))["context"] == alpha_ctx
        runs: dict[str, tuple[dict[str, Any], set[str], int]] = {}
        for name, assistant in (("alpha", alpha), ("beta", beta)):
            thread_id = await new_thread()
            before = len(responder.calls)
            responder.reset_peak()
            # No context on the run: the assistant's applies.
            await run_to_end(
                client,
                dev_server,
                thread_id,
                assistant["assistant_id"],
                input={"request": HEAT_PUMPS},
            )
            state = await client.threads.get_state(thread_id)
            asked = {c.model for c in responder.calls[before:]}
            runs[name] = (state["values"], asked, responder.peak)
    finally:
        await client.assistants.delete(alpha["assistant_id"])
        await client.assistants.delete(beta["assistant_id"])

    values, asked, peak = runs["alpha"]
    assert values["status"] == "done", values.get("error")
    assert attempt_models(values) == {
        "research": {"local:alpha-worker"},
        "writer": {"local:alpha-worker"},
    }
    assert set(values["usage"]) == {"offline", "local:alpha-worker", "local:alpha-synth"}
    assert asked == {"alpha-worker", "alpha-synth"}  # what the loopback server was asked for
    # max_parallel=1: the model server never had two requests at once. (Attempt spans
    # can't show this: started_at is wall-clock, duration_s a rounded perf_counter delta,
    # and a retry starts microseconds after the attempt before it ends.)
    assert sum(len(rec["attempts"]) for rec in values["results"].values()) >= 5
    assert peak == 1

    values, asked, peak = runs["beta"]
    assert values["status"] == "done", values.get("error")
    assert attempt_models(values) == {
        "research": {"local:beta-worker"},
        "writer": {"local:beta-writer"},
    }
    # judge=True: the validator's model was called; the synthesizer stayed offline.
    assert set(values["usage"]) == {
        "offline",
        "local:beta-worker",
        "local:beta-writer",
        "local:beta-judge",
    }
    assert asked == {"beta-worker", "beta-writer", "beta-judge"}
    assert peak >= 2  # the independent research subtasks overlapped: the count can see it


async def test_two_parallel_questions_answered_in_one_resume(
    client: LangGraphClient,
    dev_server: DevServer,
    new_thread: Callable[[], Awaitable[str]],
    responder: EngineResponder,
) -> None:
    responder.askers.add("asker")
    context = {**OFFLINE, "worker_model": "local:asker"}
    thread_id = await new_thread()

    await run_to_end(client, dev_server, thread_id, input={"request": HEAT_PUMPS}, context=context)
    assert (await client.threads.get(thread_id))["status"] == "interrupted"
    asked = await client.threads.get_state(thread_id)
    questions = asked["interrupts"]
    assert sorted(q["value"]["subtask"] for q in questions) == ["r1", "r2"]
    assert all(q["value"]["kind"] == "clarification" for q in questions)
    assert asked["next"] == ["clarify", "clarify"]

    answers = {q["id"]: {"answer": f"focus on {q['value']['subtask']} basics"} for q in questions}
    await run_to_end(client, dev_server, thread_id, command={"resume": answers}, context=context)

    state = await client.threads.get_state(thread_id)
    values = state["values"]
    assert state["next"] == [] and not state["interrupts"]
    assert values["status"] == "done", values.get("error")
    assert values["clarifications"] == {"r1": "focus on r1 basics", "r2": "focus on r2 basics"}
    clarified = [e["subtask"] for e in values["audit"] if e["kind"] == "clarification"]
    assert sorted(clarified) == ["r1", "r2"]
    # Each research subtask was asked again, with its own answer in the prompt.
    reruns = {
        (subtask_of(c), c.clarification)
        for c in responder.calls
        if c.model == "asker" and c.schema == "ResearchFindings" and c.clarification
    }
    assert reruns == {("r1", "focus on r1 basics"), ("r2", "focus on r2 basics")}

    history = await client.threads.get_history(thread_id, limit=100)
    paused = [h for h in history if h["interrupts"]]
    assert (
        paused and paused[0]["checkpoint"]["checkpoint_id"] == asked["checkpoint"]["checkpoint_id"]
    )
    assert {i["id"] for i in paused[0]["interrupts"]} == set(answers)
