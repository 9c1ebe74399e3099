"""Fix rounds: what the orchestrator adds after a review requests changes."""

from typing import Any

from foreman.core.schemas import Plan
from foreman.orchestration.fixes import add_fix_round
from foreman.orchestration.plan_validation import check_plan
from foreman.workers.registry import default_registry


def sub(sid: str, worker: str = "code", inputs: list[str] | None = None) -> dict[str, Any]:
    return {"id": sid, "worker": worker, "objective": f"do {sid}", "inputs": inputs or []}


PLAN = Plan.model_validate(
    {
        "goal": "g",
        "subtasks": [
            sub("a"),
            sub("b"),
            sub("review", "review", ["a", "b"]),
            sub("ship", "code", ["a", "b", "review"]),
        ],
    }
)


def review_record(sid: str, findings: list[dict[str, Any]]) -> Any:
    return {"id": sid, "status": "changes_requested",
            "output": {"approved": False, "findings": findings}}  # fmt: skip


def test_only_the_subjects_of_blocking_findings_are_fixed():
    findings = [
        {"subject": "b", "severity": "major", "issue": "off by one", "location": "b.py"},
        {"subject": "a", "severity": "minor", "issue": "naming"},
    ]
    revised = add_fix_round(PLAN, [review_record("review", findings)], 1)
    check_plan(revised, default_registry(), 20)
    by_id = {s.id: s for s in revised.subtasks}
    assert set(by_id) == {"a", "b", "b_fix1", "review_r2", "ship"}
    fix = by_id["b_fix1"]
    assert (fix.worker, fix.inputs, fix.replaces) == ("code", ["b"], "b")
    assert "off by one" in fix.objective and "naming" not in fix.objective
    assert by_id["review_r2"].inputs == ["a", "b_fix1"]
    assert by_id["ship"].inputs == ["a", "b_fix1", "review_r2"]
    # reviewed results keep their spec, so their accepted results are reused
    assert by_id["a"] == PLAN.subtasks[0] and by_id["b"] == PLAN.subtasks[1]


def test_a_second_round_fixes_the_fix_and_keeps_ids_short():
    first = add_fix_round(
        PLAN, [review_record("review", [{"subject": "b", "severity": "blocker", "issue": "x"}])], 1
    )
    second = add_fix_round(
        first,
        [review_record("review_r2", [{"subject": "b_fix1", "severity": "major", "issue": "y"}])],
        2,
    )
    by_id = {s.id: s for s in second.subtasks}
    assert by_id["b_fix2"].inputs == ["b_fix1"] and by_id["b_fix2"].replaces == "b_fix1"
    assert by_id["review_r3"].inputs == ["a", "b_fix2"]
    assert by_id["ship"].inputs == ["a", "b_fix2", "review_r3"]


def test_a_rejection_that_names_no_input_fixes_every_input():
    revised = add_fix_round(
        PLAN, [review_record("review", [{"subject": "", "severity": "major", "issue": "z"}])], 1
    )
    assert {"a_fix1", "b_fix1"} <= {s.id for s in revised.subtasks}
