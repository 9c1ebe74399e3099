"""The answer streams as text tokens: `stream_mode="messages"` shows the synthesizer writing.

Structured calls stay structured and are tagged `foreman:structured`; the synthesizer's prose
is a plain text call tagged `foreman:answer`, whose chunks join to the answer's body. Through
a real `ChatOpenAI` on the loopback OpenAI-compatible server (which streams SSE chunks) and
with the offline model, which streams its answer in word-sized chunks. The same through the
real `langgraph dev` server is in `tests/test_langgraph_dev.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk

from foreman import Context
from foreman.core.models import ANSWER_TAG, STRUCTURED_TAG
from foreman.examples import EXAMPLES
from foreman.orchestration.conversation import ANSWER_MESSAGE
from tests.support.engine_models import EngineResponder
from tests.support.openai_server import OpenAICompatServer
from tests.support.scripted_http import serve

REPORT = EXAMPLES["report"].request
LOCAL = {
    "planner_model": "local:planner",
    "worker_model": "local:worker",
    "synthesizer_model": "local:synth",
}


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[OpenAICompatServer, EngineResponder]]:
    """`local:` models on the loopback server, answering with the offline engines."""
    responder = EngineResponder()
    with serve(responder, monkeypatch) as server:
        yield server, responder


async def stream_messages(
    app: Any, thread: dict[str, Any], ctx: Context
) -> list[tuple[AIMessage, dict[str, Any]]]:
    """Every `(message, metadata)` the graph streams with `stream_mode="messages"`."""
    out = []
    async for message, meta in app.astream(
        {"request": REPORT}, thread, context=ctx, stream_mode="messages"
    ):
        out.append((message, meta))
    return out


def tagged(parts: list[tuple[AIMessage, dict[str, Any]]], tag: str) -> list[AIMessageChunk]:
    """The chunks of the model calls carrying `tag`: what a chat client keeps or drops."""
    return [m for m, meta in parts if isinstance(m, AIMessageChunk) and tag in meta.get("tags", [])]


def check_answer_stream(
    parts: list[tuple[AIMessage, dict[str, Any]]], values: dict[str, Any]
) -> tuple[int, int]:
    """The answer chunks join to the written answer; (chunks with text, characters)."""
    chunks = tagged(parts, ANSWER_TAG)
    text = "".join(c.text for c in chunks)
    assert len({c.id for c in chunks}) == 1  # one message, growing
    assert not any(c.tool_call_chunks for c in chunks)  # prose, no tool call
    assert text.strip() and text.strip() in values["answer"]
    # the run's output is unchanged: the final AI message is the whole answer
    final = values["messages"][-1]
    assert final.name == ANSWER_MESSAGE and final.content == values["answer"]
    # the whole final message comes too, after the chunks, untagged (it is the node's)
    assert any(
        m.content == values["answer"] and not isinstance(m, AIMessageChunk) for m, _ in parts
    )
    with_text = [c for c in chunks if c.text]
    return len(with_text), len(text)


async def test_the_answer_streams_as_text_through_an_openai_compatible_server(
    local: tuple[OpenAICompatServer, EngineResponder], app: Any, thread: dict[str, Any]
) -> None:
    server, _ = local
    parts = await stream_messages(app, thread, Context(**LOCAL))
    values = app.get_state(thread).values
    assert values["status"] == "done", values.get("error")
    chunks, chars = check_answer_stream(parts, values)
    assert chunks > 100 and chars > 1000, (chunks, chars)
    # the prose call was streamed over HTTP (SSE), the structured ones were not asked as text
    [prose] = [r for r in server.requests if not r.get("tools")]
    assert prose["model"] == "synth" and prose["stream"] is True
    # structured calls stream as tool-call chunks, tagged so a client can drop them
    structured = tagged(parts, STRUCTURED_TAG)
    assert structured and all(not c.text for c in structured)
    assert any(c.tool_call_chunks for c in structured)
    assert not set(map(id, structured)) & set(map(id, tagged(parts, ANSWER_TAG)))


async def test_the_offline_answer_streams_as_text(app: Any, thread: dict[str, Any]) -> None:
    parts = await stream_messages(app, thread, Context())
    values = app.get_state(thread).values
    assert values["status"] == "done", values.get("error")
    chunks, chars = check_answer_stream(parts, values)
    assert chunks > 100 and chars > 1000, (chunks, chars)
    # offline structured calls answer in one message each: no text among them either
    assert all(not c.text for c in tagged(parts, STRUCTURED_TAG))


async def test_without_streaming_nothing_changes(app: Any, thread: dict[str, Any]) -> None:
    streamed = await stream_messages(app, thread, Context())
    answer = app.get_state(thread).values["answer"]
    other = {"configurable": {"thread_id": thread["configurable"]["thread_id"] + "-plain"}}
    out = await app.ainvoke({"request": REPORT}, other, context=Context())
    assert out["answer"] == answer  # deterministic offline, streamed or not
    assert streamed
