"""Forty-two requests as new users send them: each gets the kind of outcome it should.

Offline, a request the documents and data cannot answer (off-topic, trivial, code) ends
unanswered with no document passed off as an answer; one they can is answered on its topic;
customer messages get a reply, dataset questions the dataset's answer. Through a real
`ChatOpenAI` over loopback HTTP, with a planner that decides as a well-behaved model would
(`tests/support/request_set.py`), each decision costs what it should: a direct answer or a
decline one model call, a one-subtask plan no synthesis call. `make bench` reports the
figures (bench/honesty.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from foreman import Context, build_graph
from tests.support.openai_server import OpenAICompatServer
from tests.support.request_set import (
    FollowTheSet,
    load_set,
    model_problems,
    offline_problems,
    run_request,
    wrong_topic_done,
)
from tests.support.scripted_http import serve

REQUESTS = load_set()
IDS = [f"{i:02d}-{e['category']}" for i, e in enumerate(REQUESTS)]


def test_the_set_is_varied_enough() -> None:
    categories = {e["category"] for e in REQUESTS}
    assert len(REQUESTS) >= 40
    assert categories == {
        "multi-part", "on-topic", "off-topic", "trivial", "code", "support-like", "data"
    }  # fmt: skip


@pytest.fixture(scope="module")
def app() -> Any:
    return build_graph().compile(checkpointer=InMemorySaver())


@pytest.mark.parametrize("entry", REQUESTS, ids=IDS)
async def test_offline_outcome(entry: dict[str, Any], app: Any, shop_db: str) -> None:
    out = await run_request(app, entry, Context(support_db=shop_db))
    assert offline_problems(entry, out) == [], out.answer[:600]
    assert not wrong_topic_done(entry, out)
    if entry["offline"] == "not_answered":
        assert out.calls == 1 and out.subtasks == 0  # one planner call, nothing dispatched


@pytest.fixture
def model_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAICompatServer]:
    with serve(FollowTheSet(), monkeypatch) as server:
        yield server


@pytest.mark.parametrize("entry", REQUESTS, ids=IDS)
async def test_model_decisions_cost_what_they_should(
    entry: dict[str, Any], app: Any, shop_db: str, model_server: OpenAICompatServer
) -> None:
    ctx = Context(
        planner_model="local:m",
        worker_model="local:m",
        synthesizer_model="local:m",
        support_db=shop_db,
    )
    out = await run_request(app, entry, ctx)
    assert model_problems(entry, out) == [], out.answer[:600]
    assert len(model_server.requests) == out.calls  # every call went over HTTP
