"""The whole Foreman graph over HTTP: a real ChatOpenAI against a loopback OpenAI-compatible server.

The server answers every chat request by running Foreman's offline engine for the schema the
request asks for, on the request's own system and user texts, so it behaves like a
deterministic model while everything else (langchain-openai, the openai client, httpx,
structured-output parsing, usage reporting, provider errors) is the code path real users get.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from langgraph.checkpoint.memory import InMemorySaver

from foreman import Context, build_graph
from foreman.core.models import ProviderError
from foreman.core.offline.model import ENGINES, text_answer
from foreman.core.prompts import untrusted
from foreman.core.text import tag
from tests.conftest import HEAT_PUMPS
from tests.support.openai_server import (
    OpenAICompatServer,
    Reply,
    requested_schema_name,
    split_messages,
    structured_reply,
)
from tests.support.scripted_http import serve

# Fixed usage each model reports per answered request: (prompt_tokens, completion_tokens).
TOKENS = {
    "planner-big": (1000, 200),
    "worker-small": (300, 60),
    "judge": (50, 5),
    "synth": (2000, 400),
}
ROLES = {
    "planner_model": "local:planner-big",
    "worker_model": "local:worker-small",
    "validator_model": "local:judge",
    "synthesizer_model": "local:synth",
}
CITATION = re.compile(r"\[([a-z0-9-]+#p\d+)\]")

# Decides, before the offline engine runs, whether a request gets an error instead.
Fault = Callable[[dict, str, str], tuple[int, str] | None]


class OfflineResponder:
    """Answers like a model: the offline engine of the requested schema, fixed usage per model.

    Attributes:
        answered: `(model, schema)` of every request answered with a 200, in order.
        failed: `(model, schema, status)` of every request answered with an error.
        fault: Optional hook returning `(status, message)` to fail a request instead.
    """

    def __init__(self) -> None:
        self.answered: list[tuple[str, str]] = []
        self.failed: list[tuple[str, str, int]] = []
        self.fault: Fault | None = None
        self._lock = threading.Lock()

    def __call__(self, request: dict) -> Reply:
        model = str(request.get("model"))
        schema = requested_schema_name(request) or "text"
        if schema != "text" and schema not in ENGINES:
            return Reply(error=(400, f"test server: no offline engine for schema {schema!r}"))
        system, human = split_messages(request)
        error = self.fault(request, system, human) if self.fault else None
        if error is not None:
            with self._lock:
                self.failed.append((model, schema, error[0]))
            return Reply(error=error)
        if schema == "text":  # the synthesizer's prose, streamed when the client asks
            reply = Reply(content=text_answer(system, human))
        else:
            reply = structured_reply(request, ENGINES[schema](system, human))
        reply.prompt_tokens, reply.completion_tokens = TOKENS[model]
        with self._lock:
            self.answered.append((model, schema))
        return reply

    def expected_usage(self) -> dict[str, dict[str, Any]]:
        """State usage the run must report: the server's usage summed per model spec."""
        calls = Counter(model for model, _ in self.answered)
        return {
            f"local:{model}": {
                "input_tokens": n * TOKENS[model][0],
                "output_tokens": n * TOKENS[model][1],
                "cost_usd": 0.0,  # local:* models are not in the price table
                "calls": n,
            }
            for model, n in calls.items()
        }


@pytest.fixture
def responder() -> OfflineResponder:
    return OfflineResponder()


@pytest.fixture
def server(
    responder: OfflineResponder, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OpenAICompatServer]:
    """A loopback server the `local:` provider points at; no proxies, no client retries."""
    with serve(responder, monkeypatch) as srv:
        yield srv


@pytest.fixture
def fast_app() -> Any:
    """The Foreman graph as built; no node retries (the HTTP client's retries are the only ones)."""
    builder = build_graph()
    for name, spec in builder.nodes.items():
        assert spec.retry_policy is None, f"{name}: a node retry multiplies provider stalls"
    return builder.compile(checkpointer=InMemorySaver())


def make_context(method: str = "function_calling") -> Context:
    return Context(**ROLES, structured_output_method=method, judge=True)


def new_thread() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def assert_finished_run(values: dict[str, Any], responder: OfflineResponder) -> None:
    """Checks every successful run shares: done, structured plan, usage, cited answer."""
    assert values["status"] == "done", values.get("error")
    workers = {s["worker"] for s in values["plan"]["subtasks"]}
    assert workers == {"research", "writer"}
    assert all(r["status"] == "accepted" for r in values["results"].values())
    assert set(values["results"]) == {s["id"] for s in values["plan"]["subtasks"]}
    # usage in state is exactly what the server reported, per model spec
    assert values["usage"] == responder.expected_usage()
    for sid, rec in values["results"].items():
        assert rec["usage"]["calls"] > 0, sid
        assert rec["usage"]["input_tokens"] > 0 and rec["usage"]["output_tokens"] > 0, sid
        models = {m for a in rec["attempts"] for m in a["usage_by_model"]}
        assert models == {"local:worker-small", "local:judge"}, sid
    # the answer cites real passages, and lists them
    answer = values["answer"]
    assert len(set(CITATION.findall(answer))) >= 3
    assert "## Sources" in answer
    assert "Offline extractive mode" not in answer


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
async def test_full_run_over_http(
    method: str, fast_app: Any, server: OpenAICompatServer, responder: OfflineResponder
) -> None:
    thread = new_thread()
    out = await fast_app.ainvoke({"request": HEAT_PUMPS}, thread, context=make_context(method))
    values = fast_app.get_state(thread).values

    assert out["status"] == "done"
    assert_finished_run(values, responder)
    assert responder.failed == []
    # every role's model was called over HTTP, with the structured-output method asked for
    assert set(server.models_seen()) == {"planner-big", "worker-small", "judge", "synth"}
    schemas = {(r["model"], requested_schema_name(r)) for r in server.requests}
    required = {
        ("planner-big", "Plan"),
        ("worker-small", "ResearchFindings"),
        ("worker-small", "Section"),
        ("judge", "Verdict"),
        ("synth", None),  # the answer is prose, not a schema
    }
    # ("worker-small", "Answer"): the generic llm worker, when it substitutes for the writer
    assert required <= schemas <= required | {("worker-small", "Answer")}
    for request in server.requests:
        if requested_schema_name(request) is None:
            assert request["model"] == "synth" and "tools" not in request
            assert "response_format" not in request
        elif method == "function_calling":
            assert request["tool_choice"]["function"]["name"] == requested_schema_name(request)
            assert "response_format" not in request
        else:
            assert request["response_format"]["type"] == "json_schema"
            assert "tools" not in request
    # one planner call, one synthesizer call, one judge call per accepted attempt
    calls = Counter(model for model, _ in responder.answered)
    assert calls["planner-big"] == 1 and calls["synth"] == 1
    attempts = [a for r in values["results"].values() for a in r["attempts"]]
    assert calls["worker-small"] == len(attempts)
    assert calls["judge"] == sum("local:judge" in a["usage_by_model"] for a in attempts)


async def test_planner_provider_errors_leave_a_resumable_thread(
    fast_app: Any, server: OpenAICompatServer, responder: OfflineResponder
) -> None:
    outage = {"on": True}

    def planner_down(request: dict, system: str, human: str) -> tuple[int, str] | None:
        if request["model"] == "planner-big" and outage["on"]:
            return 500, "planner backend overloaded"
        return None

    responder.fault = planner_down
    thread, ctx = new_thread(), make_context()
    with pytest.raises(ProviderError) as info:
        await fast_app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)

    message = str(info.value)
    assert message.startswith(f"planner model local:planner-big at {server.base_url}")
    assert "server error (HTTP 500)" in message and "planner backend overloaded" in message
    assert isinstance(info.value.__cause__, openai.InternalServerError)
    # one HTTP request: the client's retries (none here) are the only retries, no node retry
    assert responder.failed == [("planner-big", "Plan", 500)]
    assert responder.answered == []
    snapshot = fast_app.get_state(thread)
    assert snapshot.next == ("plan",)
    assert snapshot.values["request"] == HEAT_PUMPS
    assert "plan" not in snapshot.values

    # the provider is back: resuming the same thread finishes the run
    outage["on"] = False
    out = await fast_app.ainvoke(None, thread, context=ctx)
    values = fast_app.get_state(thread).values
    assert out["status"] == "done"
    assert_finished_run(values, responder)
    assert len(responder.failed) == 1  # nothing failed after recovery


async def test_worker_provider_error_stops_the_run_and_resume_finishes_it(
    fast_app: Any, server: OpenAICompatServer, responder: OfflineResponder
) -> None:
    # Retrying a subtask on a provider that is failing would fail again, and substitutes
    # and replans would spend the same provider: the run stops, resumable, instead.
    failed: dict[str, str] = {}
    lock = threading.Lock()

    def first_research_fails_once(request: dict, system: str, human: str) -> tuple[int, str] | None:
        objective = tag(human, "objective")
        if requested_schema_name(request) != "ResearchFindings" or "running costs" not in objective:
            return None
        with lock:
            if not failed:
                failed["objective"] = objective
                return 500, "worker backend hiccup"
        return None

    responder.fault = first_research_fails_once
    thread, ctx = new_thread(), make_context()
    with pytest.raises(ProviderError) as info:
        await fast_app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    assert str(info.value).startswith("research worker model local:worker-small")
    assert "worker backend hiccup" in str(info.value)

    out = await fast_app.ainvoke(None, thread, context=ctx)
    values = fast_app.get_state(thread).values
    assert out["status"] == "done"
    assert_finished_run(values, responder)
    assert responder.failed == [("worker-small", "ResearchFindings", 500)]
    (rec,) = [
        r
        for r in values["results"].values()
        if untrusted(r["attempts"][0]["input"]["objective"]) == failed["objective"]
    ]
    # the failed call left no attempt behind: the subtask ran once more, from scratch
    [attempt] = rec["attempts"]
    assert rec["status"] == "accepted" and attempt["verdict"] == "accept"
    assert attempt["error"] is None and attempt["usage"]["calls"] > 0
