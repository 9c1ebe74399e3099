"""Point the `local:` provider at the loopback OpenAI-compatible server, e.g. with scripted models.

The same `ScriptedChatModel` rules answer, but through a real `ChatOpenAI`: HTTP, the openai
client, tool-call parsing and usage reporting are the code path real providers take.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
)
from langgraph.graph.state import CompiledStateGraph

from foreman.core.models import load_chat_model
from tests.conftest import scripted_context
from tests.support.openai_server import (
    OpenAICompatServer,
    Reply,
    Responder,
    requested_schema_name,
    split_messages,
    structured_reply,
)
from tests.support.scripted import ScriptedChatModel

ROLES = {"planner_model": "planner", "worker_model": "worker", "synthesizer_model": "synth"}


class ScriptedResponder:
    """Answer each request with the scripted model named by the request's `model`."""

    def __init__(self, models: dict[str, ScriptedChatModel]):
        self.models = models

    def __call__(self, request: dict) -> Reply:
        name = str(request.get("model"))
        schema = requested_schema_name(request)
        if name not in self.models:
            return Reply(error=(400, f"test server: no scripted model {name!r} for {schema!r}"))
        if is_agent_turn(request):
            return agent_reply(self.models[name], request)
        system, human = split_messages(request)
        tools = [{"type": "function", "function": {"name": schema}}] if schema else []
        result = self.models[name]._generate(
            [SystemMessage(system), HumanMessage(human)], tools=tools
        )
        message = result.generations[0].message
        assert isinstance(message, AIMessage)
        if schema is None:  # a text call: the answer as content, streamed if asked
            reply = Reply(content=message.text)
        else:
            assert message.tool_calls
            reply = structured_reply(request, message.tool_calls[0]["args"])
        reply.prompt_tokens, reply.completion_tokens = 10, 5
        return reply


def is_agent_turn(request: dict) -> bool:
    """Whether a request is a tool-calling agent's turn: tools offered, none forced.

    Structured output forces its one tool (`tool_choice`) or asks for a `response_format`.
    """
    return bool(request.get("tools")) and request.get("tool_choice") in (None, "auto")


def agent_reply(model: ScriptedChatModel, request: dict) -> Reply:
    """An agent's next turn: the model reads the whole conversation, tool results too.

    As `bind_tools` without a `tool_choice` calls the offline model (`tool_choice=None`):
    tool calls (from the objective's words) or, after tool results, the answer.
    """
    messages = convert_to_messages(request.get("messages") or [])
    named = {c["id"]: c["name"] for m in messages if isinstance(m, AIMessage) for c in m.tool_calls}
    for message in messages:  # OpenAI's tool messages carry no name; the offline model quotes it
        if isinstance(message, ToolMessage) and not message.name:
            message.name = named.get(message.tool_call_id)
    result = model._generate(messages, tools=request["tools"], tool_choice=None)
    message = result.generations[0].message
    assert isinstance(message, AIMessage)
    reply = Reply(
        content=message.text or None,
        tool_calls=[(c["name"], c["args"]) for c in message.tool_calls],
    )
    reply.prompt_tokens, reply.completion_tokens = 10, 5
    return reply


@contextmanager
def serve(responder: Responder, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAICompatServer]:
    """A loopback server the `local:` provider points at; no proxies, no client retries."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with OpenAICompatServer(responder) as srv:
        monkeypatch.setenv("LOCAL_BASE_URL", srv.base_url)
        monkeypatch.setenv("LOCAL_API_KEY", "test")
        monkeypatch.setenv("FOREMAN_HTTP_RETRIES", "0")
        monkeypatch.setenv("FOREMAN_HTTP_TIMEOUT", "10")
        load_chat_model.cache_clear()  # models are cached per spec, with the old base URL
        yield srv
    load_chat_model.cache_clear()


async def run_scripted(
    app: CompiledStateGraph[Any, Any, Any, Any],
    request: str | dict[str, Any],
    thread: dict[str, Any],
    transport: str,
    models: dict[str, ScriptedChatModel],
    monkeypatch: pytest.MonkeyPatch,
    **overrides: Any,
) -> dict[str, Any]:
    """Run `request` (or a whole input) on scripted models, directly or over HTTP; the state."""
    given = {"request": request} if isinstance(request, str) else request
    if transport == "http":
        with serve(ScriptedResponder(models), monkeypatch):
            ctx = scripted_context(**{k: f"local:{v}" for k, v in ROLES.items()}, **overrides)
            await app.ainvoke(given, thread, context=ctx)
    else:
        await app.ainvoke(given, thread, context=scripted_context(**overrides))
    return dict((await app.aget_state(thread)).values)
