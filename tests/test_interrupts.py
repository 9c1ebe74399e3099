"""Human in the loop: plan review, questions, escalations, and bad resume payloads."""

import pytest
from langgraph.types import Command

from tests.conftest import HEAT_PUMPS, scripted_context

ASK = {"status": "needs_clarification", "question": "Which aspect?", "findings": []}
NO_ANSWER = "<clarification></clarification>"
FAILED_ANSWER = {"status": "failed", "error": "cannot write this", "text": ""}
BAD_SECTION = {"status": "failed", "error": "no", "title": "", "markdown": "", "claims": []}


@pytest.fixture(autouse=True, params=["dataflow", "waves"])
def scheduler(request, monkeypatch):
    """Every route works with both schedulers."""
    monkeypatch.setenv("FOREMAN_SCHEDULER", request.param)
    return request.param


def pending(app, thread):
    return [i.value | {"id": i.id} for i in app.get_state(thread).interrupts]


async def test_plan_review_approve_after_a_bad_payload(models, app, thread):
    ctx = scripted_context(review_plan=True)
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    [first] = pending(app, thread)
    assert first["kind"] == "plan_review" and first["error"] is None
    assert len(first["plan"]["subtasks"]) == 5
    await app.ainvoke(Command(resume={"action": "maybe"}), thread, context=ctx)
    [again] = pending(app, thread)
    assert again["kind"] == "plan_review"
    assert "not understood" in again["error"] and "approve" in again["error"]
    assert not app.get_state(thread).values.get("results")  # nothing ran
    out = await app.ainvoke(Command(resume={"action": "approve"}), thread, context=ctx)
    assert out["status"] == "done"


async def test_plan_review_edit_is_validated_then_used(models, app, thread):
    ctx = scripted_context(review_plan=True)
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    plan = pending(app, thread)[0]["plan"]
    cyclic = {
        **plan,
        "subtasks": [{**plan["subtasks"][0], "inputs": ["w1"]}, *plan["subtasks"][1:]],
    }
    await app.ainvoke(Command(resume={"action": "edit", "plan": cyclic}), thread, context=ctx)
    [again] = pending(app, thread)
    assert "edited plan is invalid" in again["error"] and "cycle" in again["error"]
    smaller = {**plan, "subtasks": plan["subtasks"][:2]}  # r1 and w1 only
    out = await app.ainvoke(
        Command(resume={"action": "edit", "plan": smaller}), thread, context=ctx
    )
    values = app.get_state(thread).values
    assert out["status"] == "done"
    assert sorted(values["results"]) == ["r1", "w1"]
    assert [p["source"] for p in values["plan_history"]] == ["planner", "human_edit"]


async def test_plan_review_reject_replans_with_feedback(models, app, thread):
    ctx = scripted_context(review_plan=True)
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    reject = {"action": "reject", "feedback": "drop running costs. add noise"}
    await app.ainvoke(Command(resume=reject), thread, context=ctx)
    [review] = pending(app, thread)
    objectives = [s["objective"] for s in review["plan"]["subtasks"]]
    assert review["version"] == 2
    assert not any("running costs" in o for o in objectives)
    assert any("noise" in o for o in objectives)
    assert "drop running costs" in models["planner"].calls_for("Plan")[-1].prompt
    out = await app.ainvoke(Command(resume={"action": "approve"}), thread, context=ctx)
    assert out["status"] == "done"


async def test_two_questions_answered_in_one_resume(models, app, thread):
    models["worker"].on("ResearchFindings", NO_ANSWER, ASK)
    ctx = scripted_context()
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    questions = pending(app, thread)
    assert sorted(q["subtask"] for q in questions) == ["r1", "r2"]
    assert all(q["kind"] == "clarification" for q in questions)
    answers = {q["id"]: {"answer": f"focus on {q['subtask']} basics"} for q in questions}
    out = await app.ainvoke(Command(resume=answers), thread, context=ctx)
    values = app.get_state(thread).values
    assert out["status"] == "done"
    assert values["clarifications"] == {"r1": "focus on r1 basics", "r2": "focus on r2 basics"}
    assert (
        "focus on r2 basics"
        in models["worker"].calls_for("ResearchFindings", "r2 basics")[0].prompt
    )


async def test_bad_clarification_answer_reasks(models, app, thread):
    models["worker"].on("ResearchFindings", (NO_ANSWER, "running costs"), ASK)
    ctx = scripted_context()
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    await app.ainvoke(Command(resume={"answr": 3}), thread, context=ctx)
    [q] = pending(app, thread)
    assert q["kind"] == "clarification" and "not understood" in q["error"]
    out = await app.ainvoke(Command(resume="electricity prices"), thread, context=ctx)
    assert out["status"] == "done"


def _failing_writer(models):
    models["worker"].on("Section", "section on running costs", BAD_SECTION)
    models["worker"].on("Answer", "section on running costs", FAILED_ANSWER)


async def test_escalation_skip(models, app, thread):
    _failing_writer(models)
    ctx = scripted_context(max_replans=0)
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    [esc] = pending(app, thread)
    assert esc["kind"] == "escalation" and esc["subtask"] == "w2"
    assert "cannot write this" in esc["failure"] and esc["error"] is None
    await app.ainvoke(Command(resume={"action": "supply"}), thread, context=ctx)  # no result
    [again] = pending(app, thread)
    assert "result" in again["error"]
    out = await app.ainvoke(Command(resume={"action": "skip"}), thread, context=ctx)
    assert out["status"] == "partial"  # what was skipped is missing from the answer
    assert "w2" in out["answer"] and "skipped" in out["answer"]  # listed under Gaps
    assert app.get_state(thread).values["results"]["summary"]["status"] == "accepted"


async def test_escalation_supply(models, app, thread):
    _failing_writer(models)
    ctx = scripted_context(max_replans=0)
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    text = "Running costs depend on the electricity to gas price ratio. [running-costs#p1]"
    out = await app.ainvoke(
        Command(resume={"action": "supply", "result": text}), thread, context=ctx
    )
    assert out["status"] == "done"
    assert "electricity to gas price ratio" in out["answer"]
    assert app.get_state(thread).values["results"]["w2"]["status"] == "supplied"


async def test_escalation_abort(models, app, thread):
    _failing_writer(models)
    ctx = scripted_context(max_replans=0)
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    out = await app.ainvoke(
        Command(resume={"action": "abort", "reason": "not worth it"}), thread, context=ctx
    )
    assert out["status"] == "aborted"
    assert "Run aborted" in out["answer"] and "not worth it" in out["answer"]


async def test_escalation_retry_on_another_model_with_a_note(models, app, thread):
    _failing_writer(models)
    ctx = scripted_context(max_replans=0)
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    [esc] = pending(app, thread)
    assert "cannot write this" in esc["failure"]
    tried = [(a["worker"], a["verdict"]) for a in esc["attempts"]]
    assert tried == [("writer", "retry"), ("writer", "substitute"), ("llm", "retry"),
                     ("llm", "give_up")]  # fmt: skip
    bad = {"action": "retry", "model": "nowhere:big"}
    await app.ainvoke(Command(resume=bad), thread, context=ctx)
    [again] = pending(app, thread)
    assert "the model for the retry cannot be used" in again["error"]
    good = {"action": "retry", "model": "scripted:fixer", "note": "cite the price ratio"}
    out = await app.ainvoke(Command(resume=good), thread, context=ctx)
    assert out["status"] == "done"
    values = app.get_state(thread).values
    w2 = values["results"]["w2"]
    assert w2["status"] == "accepted" and [a["model"] for a in w2["attempts"]] == ["scripted:fixer"]
    assert "cite the price ratio" in w2["attempts"][0]["input"]["feedback"][0]
    assert "cite the price ratio" in models["fixer"].calls_for("Section")[0].prompt
    [event] = [e for e in values["audit"] if e["kind"] == "escalation"]
    assert event["detail"]["action"] == "retry" and len(event["detail"]["failed_attempts"]) == 4


async def test_the_same_answer_twice_is_still_an_answer(models, app, thread):
    models["worker"].on("ResearchFindings", "running costs", ASK, times=2)
    ctx = scripted_context()
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    [q] = pending(app, thread)
    await app.ainvoke(Command(resume="electricity prices"), thread, context=ctx)
    [q2] = pending(app, thread)  # the worker asks once more
    assert q2["kind"] == "clarification" and q2["subtask"] == q["subtask"]
    out = await app.ainvoke(Command(resume="electricity prices"), thread, context=ctx)
    assert out["status"] == "done"
    assert app.get_state(thread).values["answers"][q["subtask"]] == 2


async def test_a_rejected_plan_edit_is_checked_once(models, app, thread, monkeypatch):
    import foreman.orchestration.human_review

    checked = []
    real = foreman.orchestration.human_review.check_plan
    monkeypatch.setattr(
        foreman.orchestration.human_review, "check_plan", lambda *a: checked.append(1) or real(*a)
    )
    ctx = scripted_context(review_plan=True)
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    plan = pending(app, thread)[0]["plan"]
    first = {**plan["subtasks"][0], "inputs": ["w1"]}
    cyclic = {**plan, "subtasks": [first, *plan["subtasks"][1:]]}
    await app.ainvoke(Command(resume={"action": "edit", "plan": cyclic}), thread, context=ctx)
    await app.ainvoke(Command(resume={"action": "maybe"}), thread, context=ctx)
    [again] = pending(app, thread)
    assert "not understood" in again["error"]
    out = await app.ainvoke(Command(resume={"action": "approve"}), thread, context=ctx)
    assert out["status"] == "done"
    assert len(checked) == 1  # not again on each later resume


async def test_an_empty_answer_in_a_resume_map_is_asked_again(models, app, thread):
    ctx = scripted_context(review_plan=True)
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    [intr] = app.get_state(thread).interrupts
    await app.ainvoke(Command(resume={intr.id: None}), thread, context=ctx)
    [again] = pending(app, thread)
    assert again["kind"] == "plan_review" and "not understood" in again["error"]


async def test_resume_none_leaves_the_thread_as_it_was(models, app, thread):
    # LangGraph itself raises on Command(resume=None) (langgraph#7034) before any node runs;
    # what Foreman can promise is that nothing is lost.
    ctx = scripted_context(review_plan=True)
    await app.ainvoke({"request": HEAT_PUMPS}, thread, context=ctx)
    before = app.get_state(thread)
    with pytest.raises(Exception):  # noqa: B017  (UnboundLocalError today, EmptyInputError once fixed)
        await app.ainvoke(Command(resume=None), thread, context=ctx)
    after = app.get_state(thread)
    assert after.config == before.config and after.interrupts == before.interrupts
    out = await app.ainvoke(Command(resume={"action": "approve"}), thread, context=ctx)
    assert out["status"] == "done"
