"""The loopback OpenAI-compatible server works with the real ChatOpenAI over HTTP."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import openai
import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from tests.support.openai_server import (
    OpenAICompatServer,
    Reply,
    Responder,
    requested_schema_name,
    structured_reply,
)


class Plan(BaseModel):
    """A tiny plan used as a structured-output schema."""

    goal: str = Field(description="What to achieve")
    steps: list[str] = Field(description="Ordered steps")


PLAN_ARGS = {"goal": "ship it", "steps": ["write code", "run tests"]}


@pytest.fixture(autouse=True)
def _offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    monkeypatch.setenv("LANGCHAIN_TRACING_V2", "false")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def serve() -> Iterator[Callable[[Responder], OpenAICompatServer]]:
    """Start servers for the test and stop them afterwards."""
    servers: list[OpenAICompatServer] = []

    def _serve(responder: Responder) -> OpenAICompatServer:
        server = OpenAICompatServer(responder).start()
        servers.append(server)
        return server

    yield _serve
    for server in servers:
        server.stop()


def _llm(server: OpenAICompatServer, **kwargs) -> ChatOpenAI:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("timeout", 10)
    return ChatOpenAI(base_url=server.base_url, api_key="test", model="test-model", **kwargs)


def test_plain_text_reply_and_usage(serve) -> None:
    server = serve(lambda req: Reply(content="hello there, tests"))
    messages = [
        SystemMessage("You are terse."),
        HumanMessage(content=[{"type": "text", "text": "say hi to everyone"}]),
    ]
    msg = _llm(server).invoke(messages)

    assert msg.content == "hello there, tests"
    assert msg.usage_metadata["input_tokens"] == 3 + 4
    assert msg.usage_metadata["output_tokens"] == 3
    assert msg.usage_metadata["total_tokens"] == 10
    assert msg.response_metadata["model_name"] == "test-model"
    assert msg.response_metadata["finish_reason"] == "stop"
    assert len(server.requests) == 1
    assert server.requests[0]["model"] == "test-model"


def test_usage_override(serve) -> None:
    server = serve(lambda req: Reply(content="x", prompt_tokens=50, completion_tokens=7))
    msg = _llm(server).invoke("hi")
    assert msg.usage_metadata["input_tokens"] == 50
    assert msg.usage_metadata["output_tokens"] == 7


def test_structured_output_function_calling(serve) -> None:
    server = serve(lambda req: structured_reply(req, PLAN_ARGS))
    llm = _llm(server).with_structured_output(Plan, method="function_calling")
    plan = llm.invoke("make a plan")

    assert plan == Plan(**PLAN_ARGS)
    request = server.requests[0]
    assert request["tool_choice"]["function"]["name"] == "Plan"
    assert requested_schema_name(request) == "Plan"


def test_structured_output_json_schema(serve) -> None:
    server = serve(lambda req: structured_reply(req, PLAN_ARGS))
    llm = _llm(server).with_structured_output(Plan, method="json_schema")
    plan = llm.invoke("make a plan")

    assert plan == Plan(**PLAN_ARGS)
    request = server.requests[0]
    assert request["response_format"]["type"] == "json_schema"
    assert "tools" not in request
    assert requested_schema_name(request) == "Plan"


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_include_raw_exposes_usage(serve, method: str) -> None:
    server = serve(lambda req: structured_reply(req, PLAN_ARGS))
    llm = _llm(server).with_structured_output(Plan, method=method, include_raw=True)
    out = llm.invoke("one two three")

    assert out["parsing_error"] is None
    assert out["parsed"] == Plan(**PLAN_ARGS)
    usage = out["raw"].usage_metadata
    assert usage["input_tokens"] == 3
    assert usage["output_tokens"] == len(json.dumps(PLAN_ARGS).split())


def test_structured_reply_falls_back_to_json_text() -> None:
    reply = structured_reply({"messages": []}, PLAN_ARGS)
    assert json.loads(reply.content) == PLAN_ARGS
    assert requested_schema_name({"messages": []}) is None


def test_server_error_raises_internal_server_error(serve) -> None:
    server = serve(lambda req: Reply(error=(500, "model exploded")))
    with pytest.raises(openai.InternalServerError, match="model exploded") as info:
        _llm(server).invoke("hi")
    assert info.value.status_code == 500
    assert info.value.body["message"] == "model exploded"
    assert len(server.requests) == 1  # max_retries=0: no retry


def test_bad_request_raises_bad_request_error(serve) -> None:
    server = serve(lambda req: Reply(error=(400, "bad schema")))
    with pytest.raises(openai.BadRequestError, match="bad schema"):
        _llm(server).invoke("hi")


def test_responder_exception_becomes_500(serve) -> None:
    def boom(req: dict) -> Reply:
        raise RuntimeError("no reply scripted")

    server = serve(boom)
    with pytest.raises(openai.InternalServerError, match="no reply scripted"):
        _llm(server).invoke("hi")


def test_streaming_text(serve) -> None:
    server = serve(lambda req: Reply(content="streamed words arrive in pieces"))
    chunks = list(_llm(server, stream_usage=True).stream("go"))

    assert len(chunks) > 2
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert merged.content == "streamed words arrive in pieces"
    assert merged.usage_metadata["input_tokens"] == 1
    assert merged.usage_metadata["output_tokens"] == 5
    assert server.requests[0]["stream"] is True
    assert server.requests[0]["stream_options"] == {"include_usage": True}


def test_streaming_tool_call(serve) -> None:
    server = serve(lambda req: Reply(tool_call=("lookup", {"query": "a b c"})))
    llm = _llm(server).bind_tools(
        [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    )
    merged = None
    for chunk in llm.stream("find it"):
        merged = chunk if merged is None else merged + chunk

    assert merged.tool_calls[0]["name"] == "lookup"
    assert merged.tool_calls[0]["args"] == {"query": "a b c"}
    assert merged.tool_calls[0]["id"].startswith("call_")


def test_concurrent_calls_all_answered(serve) -> None:
    # Each request waits until all five are in: a server answering one at a time would break
    # the barrier (after its timeout) instead of answering.
    together = threading.Barrier(5, timeout=20)

    def echo(req: dict) -> Reply:
        together.wait()
        return Reply(content=f"echo {req['messages'][-1]['content']}")

    server = serve(echo)
    llm = _llm(server)

    async def run() -> list:
        return await asyncio.gather(*(llm.ainvoke(f"job-{i}") for i in range(5)))

    results = asyncio.run(run())

    assert [r.content for r in results] == [f"echo job-{i}" for i in range(5)]
    assert len(server.requests) == 5


def test_delay_triggers_client_timeout(serve) -> None:
    server = serve(lambda req: Reply(content="late", delay_s=2.0))
    with pytest.raises(openai.APITimeoutError):
        _llm(server, timeout=0.2).invoke("hi")


def test_models_and_unknown_paths(serve) -> None:
    server = serve(lambda req: Reply(content="ok"))
    with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as resp:
        assert [m["id"] for m in json.load(resp)["data"]] == ["test-model"]

    _llm(server).bind(model="other-model").invoke("hi")
    with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as resp:
        assert [m["id"] for m in json.load(resp)["data"]] == ["other-model"]

    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{server.base_url}/nope", timeout=5)
    assert info.value.code == 404
    assert "error" in json.load(info.value)


def test_context_manager_stops_server() -> None:
    with OpenAICompatServer(lambda req: Reply(content="ok")) as server:
        url = server.base_url
        assert url.startswith("http://127.0.0.1:")
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/models", timeout=2)
