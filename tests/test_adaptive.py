"""Spending less and finishing sooner: the cascade, budgets refused before spending, hedging."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from foreman import build_graph
from foreman.core import models as model_module
from foreman.orchestration import history
from foreman.orchestration.history import AttemptRow
from tests.conftest import scripted_context
from tests.support.slow_model import SlowScriptedChatModel

PLAN = {"goal": "g", "subtasks": [{"id": "s1", "worker": "llm", "objective": "Name a colour."}]}
# USD per million tokens; a scripted call reports 10 tokens in and 5 out
# (a call's estimate counts its whole prompt, ~150 tokens: ten times what it reports)
PRICES = {"scripted:cheap": [10.0, 10.0], "scripted:strong": [1000.0, 1000.0]}
CHEAP_CALL, STRONG_CALL = 0.00015, 0.015


@pytest.fixture(autouse=True)
def fresh_history(tmp_path, monkeypatch):
    """A history of this test's own, and prices for the scripted models."""
    history.forget_views()
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(PRICES))
    monkeypatch.setenv("FOREMAN_PRICES", str(prices))
    model_module._price_table.cache_clear()
    yield
    history.forget_views()
    model_module._price_table.cache_clear()


def row(model: str, accepted: bool, latency: float = 0.05, worker: str = "llm") -> AttemptRow:
    return {
        "worker": worker,
        "model": model,
        "capability": "general",
        "verdict": "accept" if accepted else "retry",
        "accepted": accepted,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": CHEAP_CALL,
        "latency_s": latency,
        "started_at": 0.0,
        "thread_id": "earlier",
        "subtask_id": "s1",
        "attempt": 1,
        "hedged": False,
        "cached": False,
    }


async def seen(*rows: AttemptRow) -> None:
    (await history.history_of(None)).add(rows)


def cascade(**overrides: Any) -> Any:
    return scripted_context(
        model_ladders={"llm": ["scripted:cheap", "scripted:strong"]},
        assumed_output_tokens=5,
        **overrides,
    )


async def run(models, thread, ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    models["planner"].on("Plan", "<request>", PLAN)
    models["synth"].on("text", "<request>", "Blue.")
    app = build_graph().compile(checkpointer=InMemorySaver())
    out = await app.ainvoke({"request": "Name a colour."}, thread, context=ctx)
    return out, (await app.aget_state(thread)).values["results"]["s1"]


@pytest.fixture
def ladder(models):
    """The two rungs: the cheap model answers empty (invalid), the strong one well."""
    for name in ("cheap", "strong"):
        models[name] = model_module.load_chat_model(f"scripted:{name}")  # type: ignore[assignment]
    models["cheap"].on("Answer", "Name a colour", {"text": ""})
    models["strong"].on("Answer", "Name a colour", {"text": "Blue."})
    return models


async def test_without_history_the_cascade_starts_cheap_and_climbs_on_failure(ladder, thread):
    out, rec = await run(ladder, thread, cascade())
    assert out["status"] == "done"
    assert [(a["model"], a["verdict"]) for a in rec["attempts"]] == [
        ("scripted:cheap", "retry"),
        ("scripted:strong", "accept"),
    ]
    # the climb carries the validator's findings
    assert "the answer is empty" in ladder["strong"].calls_for("Answer")[0].prompt
    assert rec["usage"]["cost_usd"] == pytest.approx(CHEAP_CALL + STRONG_CALL)


async def test_with_history_it_starts_on_the_cheapest_rung_that_meets_the_target(ladder, thread):
    await seen(*[row("scripted:cheap", accepted=n % 2 == 0) for n in range(20)])  # 50 %
    await seen(*[row("scripted:strong", accepted=True) for n in range(20)])  # 100 %
    out, rec = await run(ladder, thread, cascade())
    assert [a["model"] for a in rec["attempts"]] == ["scripted:strong"]
    assert not ladder["cheap"].calls_for("Answer")


async def test_a_cheap_rung_that_meets_the_target_is_kept(ladder, thread):
    await seen(*[row("scripted:cheap", accepted=n != 0) for n in range(20)])  # 95 %
    await seen(*[row("scripted:strong", accepted=True) for n in range(20)])  # 100 %
    ladder["cheap"]._rules.clear()
    ladder["cheap"].on("Answer", "Name a colour", {"text": "Blue."})
    out, rec = await run(ladder, thread, cascade())
    assert [(a["model"], a["verdict"]) for a in rec["attempts"]] == [("scripted:cheap", "accept")]


async def test_the_target_is_relative_to_the_best_rung(ladder, thread):
    """Failures every model makes (the task's, not the model's) do not push the cascade up."""
    await seen(*[row("scripted:cheap", accepted=n % 4 != 0) for n in range(20)])  # 75 %
    await seen(*[row("scripted:strong", accepted=n % 5 != 0) for n in range(20)])  # 80 %
    ladder["cheap"]._rules.clear()
    ladder["cheap"].on("Answer", "Name a colour", {"text": "Blue."})
    out, rec = await run(ladder, thread, cascade())
    assert [a["model"] for a in rec["attempts"]] == ["scripted:cheap"]  # 75 >= 0.9 x 80


async def test_history_of_a_run_is_what_the_next_run_reads(ladder, thread):
    await run(ladder, thread, cascade())
    view = await history.history_of(None)
    assert view.capability("general", "scripted:cheap").attempts == 1
    assert view.capability("general", "scripted:cheap").acceptance == 0
    assert view.worker("llm", "scripted:strong").acceptance == 1


async def test_a_subtask_the_budget_cannot_pay_is_refused_before_any_call(ladder, thread):
    ctx = scripted_context(worker_model="scripted:strong", max_cost_usd=0.01)
    out, rec = await run(ladder, thread, ctx)
    assert rec["status"] == "over_budget" and rec["attempts"] == []
    assert "refused before spending: llm on scripted:strong" in rec["error"]
    assert not ladder["strong"].calls_for("Answer")
    assert out["status"] == "over_budget"
    assert "refused before spending" in out["answer"]  # the answer says what and why


async def test_a_call_inside_the_subtask_is_refused_when_it_would_pass_the_budget(ladder, thread):
    # the cheap attempt fits, the climb to the strong model would pass the run's budget
    out, rec = await run(ladder, thread, cascade(max_cost_usd=0.01))
    assert [(a["model"], a["verdict"]) for a in rec["attempts"]] == [
        ("scripted:cheap", "retry"),
        ("scripted:strong", "give_up"),
    ]
    assert "a scripted:strong call was refused before it was made" in rec["error"]
    assert rec["status"] == "over_budget" and out["status"] == "over_budget"
    assert not ladder["strong"].calls_for("Answer")
    assert rec["usage"]["cost_usd"] == pytest.approx(CHEAP_CALL)


async def test_the_subtask_cap_refuses_too(ladder, thread):
    out, rec = await run(ladder, thread, cascade(max_subtask_cost_usd=0.005))
    assert rec["status"] == "over_budget"
    assert "past the subtask's cap of $0.005" in rec["error"]
    assert rec["usage"]["cost_usd"] == pytest.approx(CHEAP_CALL)


async def test_a_late_attempt_is_hedged_the_first_good_answer_wins_the_other_is_cancelled(
    models, thread
):
    from foreman.core.models import register_provider

    slow = SlowScriptedChatModel(model_name="slow").hold("Answer", "Name a colour", "s", 30)
    slow.on("Answer", "Name a colour", {"text": "Red."})
    fast = models["strong"] = model_module.load_chat_model("scripted:strong")  # type: ignore[assignment]
    fast.on("Answer", "Name a colour", {"text": "Blue."})
    register_provider("slowprov", lambda name: slow)
    await seen(*[row("slowprov:x", True, latency=0.05) for _ in range(20)])
    ctx = scripted_context(
        model_ladders={"llm": ["slowprov:x", "scripted:strong"]},
        hedge_percentile=0.9,
        cascade_min_attempts=1,
    )
    started = time.perf_counter()
    out, rec = await run(models, thread, ctx)
    assert time.perf_counter() - started < 5  # the slow call holds for 30 s
    assert out["status"] == "done" and "Blue" in out["answer"]
    attempts = [(a["model"], a["verdict"], a.get("hedged", False)) for a in rec["attempts"]]
    assert attempts == [("slowprov:x", "cancelled", False), ("scripted:strong", "accept", True)]
    assert rec["attempts"][0]["error"] == "cancelled: the other attempt answered first"
    view = await history.history_of(None)
    assert view.worker("llm", "slowprov:x").attempts == 20  # a cancelled attempt teaches nothing


TWO = {
    "goal": "g",
    "subtasks": [
        {"id": "s1", "worker": "llm", "objective": "Name a colour."},
        {"id": "s2", "worker": "llm", "objective": "Name a fruit."},
    ],
}


async def test_a_synthesis_the_budget_cannot_pay_gives_the_results_as_they_are(
    models, thread, tmp_path, monkeypatch
):
    (tmp_path / "p.json").write_text('{"scripted:synth": [100000, 100000]}')
    monkeypatch.setenv("FOREMAN_PRICES", str(tmp_path / "p.json"))
    model_module._price_table.cache_clear()
    models["planner"].on("Plan", "<request>", TWO)
    models["worker"].on("Answer", "Name a colour", {"text": "Blue."})
    models["worker"].on("Answer", "Name a fruit", {"text": "A pear."})
    app = build_graph().compile(checkpointer=InMemorySaver())
    ctx = scripted_context(max_cost_usd=1.0)  # the synthesis prompt alone would cost more
    out = await app.ainvoke({"request": "A colour and a fruit."}, thread, context=ctx)
    assert out["status"] == "over_budget"
    assert "synthesizing them was refused before spending" in out["answer"]
    assert "Blue." in out["answer"] and "A pear." in out["answer"]
    assert not models["synth"].calls
    usage = (await app.aget_state(thread)).values["usage"]
    assert sum(u["cost_usd"] for u in usage.values()) <= 1.0


async def test_a_revision_the_budget_cannot_pay_is_not_asked_for(
    models, thread, tmp_path, monkeypatch
):
    (tmp_path / "p.json").write_text('{"scripted:planner": [1000, 1000]}')
    monkeypatch.setenv("FOREMAN_PRICES", str(tmp_path / "p.json"))
    model_module._price_table.cache_clear()
    models["planner"].on("Plan", "<request>", PLAN)
    models["worker"].on("Answer", "Name a colour", {"text": ""})  # fails: a revision is due
    app = build_graph().compile(checkpointer=InMemorySaver())
    # the first plan costs 0.015; a revision's prompt (the plan, the failures) would pass 0.3
    ctx = scripted_context(max_cost_usd=0.3)
    out = await app.ainvoke({"request": "Name a colour."}, thread, context=ctx)
    assert out["status"] == "over_budget"
    assert len(models["planner"].calls_for("Plan")) == 1
    values = (await app.aget_state(thread)).values
    assert "a plan revision was refused before spending" in values["error"]
    assert sum(u["cost_usd"] for u in values["usage"].values()) <= 0.3


async def test_a_result_a_climb_got_accepted_is_reused_by_the_next_run(ladder):
    """The cache is looked up on the starting rung and every rung above it."""
    from langgraph.store.memory import InMemoryStore

    ladder["planner"].on("Plan", "<request>", PLAN)
    ladder["synth"].on("text", "<request>", "Blue.")
    app = build_graph().compile(checkpointer=InMemorySaver(), store=InMemoryStore())
    first = {"configurable": {"thread_id": "first"}}
    await app.ainvoke({"request": "Name a colour."}, first, context=cascade(cache="use"))
    calls = len(ladder["cheap"].calls) + len(ladder["strong"].calls)
    second = {"configurable": {"thread_id": "second"}}
    out = await app.ainvoke({"request": "Name a colour."}, second, context=cascade(cache="use"))
    assert out["status"] == "done"
    (attempt,) = (await app.aget_state(second)).values["results"]["s1"]["attempts"]
    assert attempt.get("cached") and attempt["model"] == "scripted:strong"
    assert len(ladder["cheap"].calls) + len(ladder["strong"].calls) == calls  # no new call
