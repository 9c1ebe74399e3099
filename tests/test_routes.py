"""Each validator route and planner retry, with scripted models keyed on prompt content."""

import pytest

from tests.conftest import HEAT_PUMPS, scripted_context

BAD_SECTION = {
    "status": "done", "title": "Running costs", "markdown": "Cheap to run. [made-up#p1]",
    "claims": [{"text": "Cheap to run", "citations": ["made-up#p1"]}],
}  # fmt: skip
COSTS = "section on running costs"
FAILED_ANSWER = {"status": "failed", "error": "cannot write this", "text": ""}


@pytest.fixture(autouse=True, params=["dataflow", "waves"])
def scheduler(request, monkeypatch):
    """Every route works with both schedulers."""
    monkeypatch.setenv("FOREMAN_SCHEDULER", request.param)
    return request.param


def attempts(app, thread, sid):
    return app.get_state(thread).values["results"][sid]["attempts"]


async def test_offline_plan_shape_and_validation(models, app, thread):
    out = await app.ainvoke({"request": HEAT_PUMPS}, thread, context=scripted_context())
    assert out["status"] == "done"
    plan = app.get_state(thread).values["plan"]
    shape = {s["id"]: (s["worker"], s["inputs"]) for s in plan["subtasks"]}
    assert shape == {
        "r1": ("research", []), "w1": ("writer", ["r1"]),
        "r2": ("research", []), "w2": ("writer", ["r2"]),
        "summary": ("writer", ["w1", "w2"]),
    }  # fmt: skip


async def test_retry_same_worker_with_feedback(models, app, thread):
    models["worker"].on("Section", COSTS, BAD_SECTION, times=1)
    out = await app.ainvoke({"request": HEAT_PUMPS}, thread, context=scripted_context())
    assert out["status"] == "done"
    tries = attempts(app, thread, "w2")
    assert [a["verdict"] for a in tries] == ["retry", "accept"]
    assert "made-up#p1" in tries[0]["feedback"][0]
    second = models["worker"].calls_for("Section", COSTS)[1].prompt
    assert "cites sources its inputs do not contain: made-up#p1" in second


async def test_substitute_alternative_worker(models, app, thread):
    models["worker"].on("Section", COSTS, BAD_SECTION)  # the writer never gets it right
    out = await app.ainvoke({"request": HEAT_PUMPS}, thread, context=scripted_context())
    assert out["status"] == "done"
    tries = attempts(app, thread, "w2")
    assert [(a["worker"], a["verdict"]) for a in tries] == [
        ("writer", "retry"),
        ("writer", "substitute"),
        ("llm", "accept"),
    ]
    assert app.get_state(thread).values["results"]["w2"]["worker"] == "llm"


async def test_replan_revises_only_what_failed(models, app, thread):
    models["worker"].on("Section", COSTS, BAD_SECTION).on("Answer", COSTS, FAILED_ANSWER)

    def revise(prompt: str) -> dict:
        import json
        import re

        plan = json.loads(re.findall(r"<current_plan>(\{.*?)</current_plan>", prompt, re.S)[-1])
        for sub in plan["subtasks"]:
            if sub["id"] == "w2":
                sub["objective"] = "Write the report section on electricity bills of heat pumps."
        return plan

    models["planner"].on("Plan", "<failure subtask=", revise)
    out = await app.ainvoke({"request": HEAT_PUMPS}, thread, context=scripted_context())
    values = app.get_state(thread).values
    assert out["status"] == "done"
    assert values["plan_version"] == 2 and values["replans"] == 1
    revise_prompt = models["planner"].calls_for("Plan", "<failure subtask=")[0].prompt
    assert "<accepted>" in revise_prompt and "w1" in revise_prompt.rsplit("<accepted>", 1)[1]
    # accepted work is kept: each research subtask and w1 ran once, w2 reran under plan v2;
    # no research ran again after the replan
    assert len(models["worker"].calls_for("ResearchFindings")) == 2
    assert [a["verdict"] for a in values["results"]["r1"]["attempts"]] == ["accept"]
    assert values["results"]["r2"]["plan_version"] == 1
    assert len(models["worker"].calls_for("Section", "section on how they work")) == 1
    assert values["results"]["w1"]["plan_version"] == 1
    assert values["results"]["w2"]["plan_version"] == 2
    assert values["results"]["w2"]["status"] == "accepted"


async def test_planner_gets_feedback_on_invalid_plans(models, app, thread):
    bad = {"goal": "g", "subtasks": [{"id": "a", "worker": "astrologer", "objective": "x"}]}
    models["planner"].on("Plan", "<request>", bad, times=2)
    out = await app.ainvoke({"request": HEAT_PUMPS}, thread, context=scripted_context())
    assert out["status"] == "done"
    calls = models["planner"].calls_for("Plan")
    assert len(calls) == 3
    assert "unknown worker 'astrologer'" in calls[1].prompt
    kinds = [e["kind"] for e in app.get_state(thread).values["audit"]]
    assert kinds.count("plan_rejected") == 2


async def test_planner_that_never_plans_ends_with_a_clear_error(models, app, thread):
    cyclic = {"goal": "g", "subtasks": [
        {"id": "a", "worker": "llm", "objective": "x", "inputs": ["b"]},
        {"id": "b", "worker": "llm", "objective": "y", "inputs": ["a"]}]}  # fmt: skip
    models["planner"].on("Plan", "<request>", cyclic)
    out = await app.ainvoke({"request": HEAT_PUMPS}, thread, context=scripted_context())
    assert out["status"] == "failed"
    assert "did not produce a valid plan in 3 attempts" in out["error"]
    assert "dependency cycle" in out["error"]
    assert "could not plan" in out["answer"]


async def test_budget_stops_dispatching(models, app, thread):
    ctx = scripted_context(max_total_tokens=50, max_parallel=1)
    out = await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    results = app.get_state(thread).values["results"]
    assert out["status"] == "over_budget"
    assert "Budget reached" in out["answer"]
    assert any(r["status"] == "over_budget" for r in results.values())
    spent = sum(r["usage"]["input_tokens"] + r["usage"]["output_tokens"] for r in results.values())
    assert spent < 50 + 3 * 15  # stopped right after crossing, not at the end


async def test_judge_rejection_is_a_retry(models, app, thread):
    models["judge"].on("Verdict", COSTS, {"accept": False, "feedback": "too vague"}, times=1)
    ctx = scripted_context(judge=True)
    out = await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    assert out["status"] == "done"
    tries = attempts(app, thread, "w2")
    assert tries[0]["verdict"] == "retry" and tries[0]["feedback"] == ["judge: too vague"]
    assert "scripted:judge" in tries[0]["usage_by_model"]
    assert "scripted:judge" in app.get_state(thread).values["usage"]


async def test_cost_from_the_price_table_and_cost_budget(
    models, app, thread, tmp_path, monkeypatch
):
    """Costs come from the price table; a budget refuses what would pass it, and the run
    stops under it, saying what was not done."""
    from foreman.core import models as model_module

    prices = tmp_path / "prices.json"
    prices.write_text('{"scripted:worker": [1000, 2000], "scripted:planner": [0, 0]}')
    monkeypatch.setenv("FOREMAN_PRICES", str(prices))
    model_module._price_table.cache_clear()
    try:
        out = await app.ainvoke(
            {"request": HEAT_PUMPS},
            thread,
            # a call's estimate is its prompt (up to ~800 tokens at $0.001) and 5 tokens
            # out: $0.76-0.78, where it spends $0.02; so four calls fit, the fifth does not
            context=scripted_context(max_cost_usd=0.8, max_parallel=1, assumed_output_tokens=5),
        )
        values = app.get_state(thread).values
    finally:
        model_module._price_table.cache_clear()
    # each scripted call reports 10 in / 5 out tokens: 10 x $0.001 + 5 x $0.002 = $0.02
    worker = values["usage"]["scripted:worker"]
    assert worker["calls"] >= 1
    assert worker["cost_usd"] == pytest.approx(0.02 * worker["calls"])
    done = [r for r in values["results"].values() if r["status"] == "accepted"]
    per_subtask = [r["usage"]["cost_usd"] for r in done]
    assert per_subtask and all(c > 0 for c in per_subtask)
    assert out["status"] == "over_budget"
    assert worker["cost_usd"] <= 0.8  # refused before passing it, not stopped after
    refused = [r for r in values["results"].values() if r["status"] == "over_budget"]
    assert refused and any("refused before" in (r["error"] or "") for r in refused)
    assert "Budget reached" in out["answer"]


async def test_synthesizer_is_asked_again_after_an_empty_answer(models, app, thread):
    models["synth"].on("text", "<request>", " \n ", times=1)
    out = await app.ainvoke({"request": HEAT_PUMPS}, thread, context=scripted_context())
    assert out["status"] == "done" and "## Sources" in out["answer"]
    first, second = models["synth"].calls_for("text")
    assert "previous answer was empty" not in first.prompt
    assert "previous answer was empty" in second.prompt
    assert app.get_state(thread).values["usage"]["scripted:synth"]["calls"] == 2


async def test_synthesizer_that_never_answers_well_leaves_the_run_resumable(models, app, thread):
    from foreman.core.models import StructuredOutputError

    models["synth"].on("text", "<request>", "")
    ctx = scripted_context(max_synthesis_attempts=2)
    with pytest.raises(StructuredOutputError, match="synthesizer model scripted:synth returned no"):
        await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    state = app.get_state(thread)
    assert state.next == ("synthesize",)  # every accepted subtask kept
    assert all(r["status"] == "accepted" for r in state.values["results"].values())
    out = await app.ainvoke(None, thread, context=scripted_context(synthesizer_model="offline"))
    assert out["status"] == "done"
