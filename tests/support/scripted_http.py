"""Serve scripted models over the loopback OpenAI-compatible server.

The same `ScriptedChatModel` rules answer, but through a real `ChatOpenAI`: HTTP, the openai
client, tool-call parsing and usage reporting are the code path real providers take.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from graph.models import load_chat_model
from tests.support.openai_server import (
    OpenAICompatServer,
    Reply,
    requested_schema_name,
    structured_reply,
)
from tests.support.scripted import ScriptedChatModel


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return "\n".join(p.get("text", "") for p in parts if isinstance(p, dict))


class ScriptedResponder:
    """Answer each request with the scripted model named by the request's `model`."""

    def __init__(self, models: dict[str, ScriptedChatModel]):
        self.models = models

    def __call__(self, request: dict) -> Reply:
        name = str(request.get("model"))
        schema = requested_schema_name(request)
        if name not in self.models or schema is None:
            return Reply(error=(400, f"test server: no scripted model {name!r} for {schema!r}"))
        messages = request.get("messages") or []
        system = [_text(m.get("content")) for m in messages if m.get("role") == "system"]
        human = [_text(m.get("content")) for m in messages if m.get("role") != "system"]
        result = self.models[name]._generate(
            [SystemMessage("\n".join(system)), HumanMessage("\n".join(human))],
            tools=[{"type": "function", "function": {"name": schema}}],
        )
        message = result.generations[0].message
        assert isinstance(message, AIMessage) and message.tool_calls
        reply = structured_reply(request, message.tool_calls[0]["args"])
        reply.prompt_tokens, reply.completion_tokens = 10, 5
        return reply


@contextmanager
def serve_scripted(
    models: dict[str, ScriptedChatModel], monkeypatch: pytest.MonkeyPatch
) -> Iterator[OpenAICompatServer]:
    """Point the `local:` provider at a loopback server answering with `models`."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with OpenAICompatServer(ScriptedResponder(models)) as srv:
        monkeypatch.setenv("LOCAL_BASE_URL", srv.base_url)
        monkeypatch.setenv("LOCAL_API_KEY", "test")
        monkeypatch.setenv("FOREMAN_HTTP_RETRIES", "0")
        load_chat_model.cache_clear()
        yield srv
    load_chat_model.cache_clear()
