"""Quorums: a group of interchangeable subtasks finishes on k of its n members."""

import asyncio
import time
from dataclasses import replace

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from foreman import build_graph
from foreman.checkpointers import open_persistence
from foreman.core.schemas import Plan
from foreman.orchestration import quorum
from foreman.orchestration.audit import to_markdown
from foreman.orchestration.plan_validation import PlanError, check_plan, fingerprints
from foreman.workers.registry import WorkerRegistry, WorkerSpec
from tests.conftest import scripted_context
from tests.support import sim

REASON = "cancelled: quorum of 2 of 3 reached (group sources)"


@pytest.fixture(autouse=True)
def _reset():
    sim.reset()
    yield
    sim.reset()


def step(sid, seconds, inputs=(), group=None):
    sub = {"id": sid, "worker": "sim", "objective": f"wait {seconds}", "inputs": list(inputs)}
    if group:
        sub["group"] = group
    return sub


def sources_plan(*extra, k=2, slow_inputs=()):
    """r1, r2 quick (r2 slow enough for r3 to start), r3 held by a test; d needs the group."""
    return {
        "goal": "simulated",
        "subtasks": [
            step("r1", 0.01, group="sources"),
            step("r2", 0.2, group="sources"),
            step("r3", 0.01, slow_inputs, group="sources"),
            step("d", 0.01, ["r1", "r2", "r3"]),
            *extra,
        ],
        "quorums": {"sources": k},
    }


def compiled(registry=None):
    return build_graph(registry or sim.registry()).compile(checkpointer=InMemorySaver())


async def run(models, thread, plan, app=None, **ctx):
    models["planner"].on("Plan", "<request>", plan)
    models["synth"].on("text", "<request>", "all done")
    app = app or compiled()
    out = await app.ainvoke({"request": "simulate"}, thread, context=scripted_context(**ctx))
    return app, out


def events(app, thread, kind):
    return [e for e in app.get_state(thread).values["audit"] if e["kind"] == kind]


async def test_the_member_not_needed_is_cancelled_not_waited_for(models, thread):
    sim.HOLD["r3"] = 30.0
    t0 = time.perf_counter()
    app, out = await run(models, thread, sources_plan(), max_parallel=8)
    elapsed = time.perf_counter() - t0
    assert elapsed < 3, f"the run waited for the cancelled member ({elapsed:.1f}s)"
    assert out["status"] == "done"  # the cancelled member was not needed: not partial
    results = app.get_state(thread).values["results"]
    assert sim.RUNS["r3"] == 1 and "r3" not in sim.INTERVALS  # started, never finished
    assert results["r3"]["status"] == "cancelled"
    assert results["r3"]["error"] == REASON
    assert results["d"]["text"] == "d done (inputs: r1,r2)"  # ran on the accepted two
    [ev] = events(app, thread, "quorum")
    assert ev["detail"] == {
        "group": "sources", "quorum": 2, "size": 3, "accepted": ["r1", "r2"], "cancelled": ["r3"]
    }  # fmt: skip
    result_events = {e["subtask"]: e["detail"]["status"] for e in events(app, thread, "result")}
    assert result_events["r3"] == "cancelled"
    assert events(app, thread, "synthesis")[-1]["detail"]["not_waited_for"] == ["r3"]
    assert "## Not waited for" in out["answer"] and f"(r3): {REASON}" in out["answer"]
    assert "## Gaps" not in out["answer"] and "Answered in part" not in out["answer"]
    report = to_markdown(app.get_state(thread).values)  # what `foreman show` prints
    assert "- `r3` [sim] (group sources): wait 0.01" in report
    assert "- quorum: 2 of group sources" in report
    assert "### `r3` — cancelled" in report and f"Error: {REASON}" in report


async def test_a_member_waiting_on_its_inputs_is_cancelled_before_it_starts(models, thread):
    plan = sources_plan(step("pre", 1.0), slow_inputs=["pre"])
    app, out = await run(models, thread, plan, max_parallel=8)
    assert out["status"] == "done"
    results = app.get_state(thread).values["results"]
    assert results["r3"]["status"] == "cancelled" and sim.RUNS["r3"] == 0
    assert results["r3"]["attempts"] == []
    assert results["d"]["text"] == "d done (inputs: r1,r2)"
    assert sim.INTERVALS["d"][0] < sim.INTERVALS["pre"][1]  # d did not wait for r3's input


def failing_on(*ids):
    spec = sim.registry()["sim"]
    bad = replace(spec, check=lambda out, inp, c: ["bad"] if inp.subtask.id in ids else [])
    return WorkerRegistry([bad])


async def test_an_unreachable_quorum_fails_as_usual(models, thread):
    app = compiled(failing_on("r2", "r3"))
    await run(models, thread, sources_plan(), app=app, max_replans=0, max_attempts=1)
    state = app.get_state(thread)
    escalated = sorted(i.value["subtask"] for i in state.interrupts)
    assert escalated == ["r2", "r3"]
    assert {i.value["kind"] for i in state.interrupts} == {"escalation"}
    results = state.values["results"]
    assert [results[s]["status"] for s in ("r1", "r2", "r3")] == ["accepted", "failed", "failed"]
    assert "d" not in results  # blocked: its group did not meet its quorum
    assert not events(app, thread, "quorum")


async def test_a_failed_member_of_a_group_that_met_its_quorum_is_no_failure(models, thread):
    app = compiled(failing_on("r1"))
    _, out = await run(models, thread, sources_plan(), app=app, max_replans=0, max_attempts=1)
    assert out["status"] == "done"
    assert not app.get_state(thread).interrupts
    results = app.get_state(thread).values["results"]
    assert results["r1"]["status"] == "failed"
    assert results["d"]["text"] == "d done (inputs: r2,r3)"
    assert "(r1): failed: bad; not needed, the quorum of 2 of group sources" in out["answer"]
    assert not events(app, thread, "quorum")  # nothing was left to cancel


async def test_a_question_from_a_member_not_needed_is_not_asked(models, thread):
    async def answer(inp, ctx):
        sid = inp.subtask.id
        await asyncio.sleep(float(inp.subtask.objective.split()[-1]))
        if sid == "r1":
            return {"status": "needs_clarification", "question": "which heat pump?"}
        return {"status": "done", "text": f"{sid} answered"}

    spec = WorkerSpec(
        name="sim", capability="test", description="answers, or asks (r1)",
        output_schema=sim.Waited, check=lambda o, i, c: [],
        render=lambda o: str(o.get("text", "")), tool=answer,
    )  # fmt: skip
    app = compiled(WorkerRegistry([spec]))
    _, out = await run(models, thread, sources_plan(), app=app)
    assert out["status"] == "done" and not app.get_state(thread).interrupts
    assert app.get_state(thread).values["results"]["r1"]["status"] == "needs_clarification"
    assert "(r1): needs_clarification; not needed, the quorum of 2" in out["answer"]


@pytest.fixture(params=["memory", "sqlite"])
async def saved_app(request, tmp_path):
    """The sim graph on an in-memory checkpointer, then on SQLite with its store."""
    if request.param == "memory":
        yield compiled()
        return
    async with open_persistence(f"sqlite:{tmp_path / 'quorum.sqlite'}") as (saver, store):
        yield build_graph(sim.registry()).compile(checkpointer=saver, store=store)


async def test_resume_after_a_crash_does_not_rerun_a_cancelled_member(models, thread, saved_app):
    # r1, r2 accepted and r3 cancelled early; c (unrelated) crashes later in the round.
    sim.HOLD["r3"] = 30.0
    sim.CRASH_ON.add("c")
    plan = sources_plan(step("c", 0.6))
    models["planner"].on("Plan", "<request>", plan)
    models["synth"].on("text", "<request>", "all done")
    app = saved_app
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="simulated crash in c"):
        await app.ainvoke({"request": "simulate"}, thread, context=scripted_context())
    assert time.perf_counter() - t0 < 3
    assert (await app.aget_state(thread)).next == ("dispatch",)
    assert dict(sim.RUNS) == {"r1": 1, "r2": 1, "r3": 1, "c": 1, "d": 1}
    sim.CRASH_ON.clear()
    out = await app.ainvoke(None, thread, context=scripted_context())
    assert out["status"] == "done"
    assert dict(sim.RUNS) == {"r1": 1, "r2": 1, "r3": 1, "c": 2, "d": 1}  # r3 replayed
    results = (await app.aget_state(thread)).values["results"]
    assert results["r3"]["status"] == "cancelled" and results["r3"]["error"] == REASON
    assert results["d"]["text"] == "d done (inputs: r1,r2)"


async def rerun(app, thread, subtask):
    from foreman.rerun import find_base, fork_for_rerun

    config = {"configurable": {"thread_id": thread["configurable"]["thread_id"]}}
    fork = await find_base(app, config["configurable"]["thread_id"], subtask)
    await fork_for_rerun(app, fork)
    return await app.ainvoke(None, config, context=scripted_context())


async def test_a_person_can_rerun_a_cancelled_member(models, thread):
    sim.HOLD["r3"] = 30.0
    app, _ = await run(models, thread, sources_plan())
    sim.HOLD.clear()
    out = await rerun(app, thread, "r3")  # marks r3 and d `rerun`: both run, none cancelled
    assert out["status"] == "done"
    results = app.get_state(thread).values["results"]
    assert results["r3"]["status"] == "accepted" and sim.RUNS["r3"] == 2
    assert results["d"]["text"] == "d done (inputs: r1,r2,r3)"
    assert "Not waited for" not in out["answer"]


async def test_rerunning_an_accepted_member_does_not_reopen_the_cancelled_one(models, thread):
    sim.HOLD["r3"] = 30.0
    app, _ = await run(models, thread, sources_plan())
    out = await rerun(app, thread, "r1")
    assert out["status"] == "done"
    assert dict(sim.RUNS) == {"r1": 2, "r2": 1, "r3": 1, "d": 2}
    assert app.get_state(thread).values["results"]["r3"]["status"] == "cancelled"


async def test_waves_stop_dispatching_a_group_that_met_its_quorum(models, thread):
    # Two at a time: r1 and r2 make the first wave; r3 is then not sent, d runs on r1, r2.
    app, out = await run(models, thread, sources_plan(), scheduler="waves", max_parallel=2)
    assert out["status"] == "done"
    results = app.get_state(thread).values["results"]
    assert results["r3"]["status"] == "cancelled" and sim.RUNS["r3"] == 0
    assert results["r3"]["error"] == REASON
    assert results["d"]["text"] == "d done (inputs: r1,r2)"
    waves = [e["detail"]["wave"] for e in events(app, thread, "dispatch_round")]
    assert [sorted(w) for w in waves] == [["r1", "r2"], ["d"]]
    [ev] = events(app, thread, "quorum")
    assert ev["detail"]["cancelled"] == ["r3"] and ev["detail"]["accepted"] == ["r1", "r2"]
    assert "## Not waited for" in out["answer"]


# --- the plan's contract -------------------------------------------------------------


def plan_of(*subtasks, quorums=None):
    return Plan.model_validate({"goal": "g", "subtasks": list(subtasks), "quorums": quorums or {}})


def problems(p):
    with pytest.raises(PlanError) as exc:
        check_plan(p, {"sim"}, 12)
    return exc.value.problems


def test_a_plan_with_a_quorum_passes():
    check_plan(Plan.model_validate(sources_plan()), {"sim"}, 12)
    # without a quorum a group waits for all: depending on part of it is fine
    check_plan(plan_of(step("a", 0, group="g"), step("b", 0, group="g"), step("c", 0, ["a"])),
               {"sim"}, 12)  # fmt: skip


def test_a_quorum_names_a_group_of_the_plan():
    assert problems(plan_of(step("a", 0, group="g"), quorums={"h": 1})) == [
        "quorum for unknown group 'h' (no subtask has this `group`)"
    ]


@pytest.mark.parametrize("k", [0, 3])
def test_a_quorum_is_between_one_and_the_group_size(k):
    p = plan_of(step("a", 0, group="g"), step("b", 0, group="g"), quorums={"g": k})
    assert problems(p) == [f"group g: quorum {k} must be between 1 and its 2 subtask(s) (a, b)"]


def test_members_of_a_group_are_independent():
    p = plan_of(step("a", 0, group="g"), step("b", 0, ["a"], group="g"), quorums={"g": 1})
    assert problems(p) == [
        "subtask b depends on a of its own group g: interchangeable subtasks must be independent"
    ]


def test_a_dependent_of_a_group_that_may_be_cut_short_needs_all_of_it():
    p = plan_of(
        step("a", 0, group="g"), step("b", 0, group="g"), step("c", 0, group="g"),
        step("d", 0, ["a", "b"]), quorums={"g": 2},
    )  # fmt: skip
    assert problems(p) == [
        "subtask d depends on part of group g (quorum 2 of 3) but not on c: depend on all of "
        "its members, or on none"
    ]


def test_a_group_is_not_part_of_the_fingerprint():
    # regrouping keeps results, and fingerprints saved before groups existed still match
    grouped = Plan.model_validate(sources_plan())
    plain = Plan.model_validate(
        {"goal": "g", "subtasks": [{k: v for k, v in s.items() if k != "group"}
                                   for s in sources_plan()["subtasks"]]}
    )  # fmt: skip
    assert fingerprints(grouped) == fingerprints(plain)


def test_spare_and_reopened_members():
    p = Plan.model_validate(sources_plan())
    assert quorum.spare(p, {"r1": "accepted", "r2": "failed"}) == set()
    assert quorum.spare(p, {"r1": "accepted", "r2": "supplied"}) == {"r3"}
    assert quorum.spare(p, {"r1": "accepted", "r2": "skipped"}) == set()  # skipped holds nothing
    # a revision raised the quorum to 3: the cancelled member runs after all
    statuses = {"r1": "accepted", "r2": "accepted", "r3": "cancelled"}
    assert quorum.reopened(p, statuses) == set()
    raised = Plan.model_validate(sources_plan(k=3))
    assert quorum.reopened(raised, statuses) == {"r3"}
