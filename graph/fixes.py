"""Fix rounds: after a review requests changes, fix what it names and review again.

The orchestrator does this by rule rather than by asking the planner model: the review
already says what is wrong and where, so the revision is mechanical, cheap and predictable.
"""

from __future__ import annotations

import re
from typing import Any

from foreman.core.schemas import Plan, Subtask
from foreman.core.state import SubtaskRecord

BLOCKING = ("blocker", "major")


def _base(sid: str) -> str:
    """`c2_fix1` → `c2`, `review_r2` → `review`: ids stay short round after round."""
    return re.sub(r"_(?:fix\d+|r\d+)$", "", sid)


def _unique(wanted: str, taken: set[str]) -> str:
    sid, n = wanted[:40], 2
    while sid in taken:
        sid, n = f"{wanted[:37]}_{n}", n + 1
    taken.add(sid)
    return sid


def _finding_line(f: dict[str, Any]) -> str:
    where = f" ({f['location']})" if f.get("location") else ""
    fix = f" Suggested fix: {f['suggestion']}" if f.get("suggestion") else ""
    return f"- [{f.get('severity', 'major')}]{where} {f.get('issue', '')}{fix}"


def add_fix_round(plan: Plan, reviews: list[SubtaskRecord], round_no: int) -> Plan:
    """A revised plan: a fix subtask per reviewed result with blocking findings, a new review.

    Each fix runs on the reviewed subtask's worker with that result as its input and the
    findings in its objective, and `replaces` it; the review is replaced by one over the
    fixed results, and everything downstream is rewired to the new ids.
    """
    by_id = {s.id: s for s in plan.subtasks}
    taken = set(by_id)
    renamed: dict[str, str] = {}
    added: list[Subtask] = []
    for rec in reviews:
        review = by_id[rec["id"]]
        findings = [
            f for f in (rec["output"] or {}).get("findings", []) if f.get("severity") in BLOCKING
        ]
        named = {f.get("subject") for f in findings} & set(review.inputs)
        for tid in [i for i in review.inputs if i in named] or list(review.inputs):
            target = by_id[tid]
            mine = [f for f in findings if f.get("subject") in (tid, None, "")] or findings
            fix_id = _unique(f"{_base(tid)}_fix{round_no}", taken)
            objective = (
                f"Fix the result of subtask {tid} (input {tid}), whose objective was: "
                f"{target.objective}\nA review found these problems; correct them and return "
                "the complete corrected result, keeping what already works:\n"
                + "\n".join(_finding_line(f) for f in mine)
            )
            added.append(
                target.model_copy(
                    update={"id": fix_id, "objective": objective, "inputs": [tid], "replaces": tid}
                )
            )
            renamed[tid] = fix_id
        new_review_id = _unique(f"{_base(review.id)}_r{round_no + 1}", taken)
        renamed[review.id] = new_review_id
        added.append(
            review.model_copy(
                update={
                    "id": new_review_id,
                    "inputs": [renamed.get(i, i) for i in review.inputs],
                    "replaces": review.id,
                }
            )
        )
    reviewed = {r["id"] for r in reviews}
    # Reviewed results keep their inputs (and so their accepted results); what consumed them
    # or the review now consumes the fixes and the new review.
    kept = [
        s
        if s.id in renamed
        else s.model_copy(update={"inputs": [renamed.get(i, i) for i in s.inputs]})
        for s in plan.subtasks
        if s.id not in reviewed
    ]
    return Plan(goal=plan.goal, subtasks=kept + added)
