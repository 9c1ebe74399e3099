"""Reading the run's state: the current plan, and which results and questions belong to it."""

from __future__ import annotations

from foreman.core.schemas import Plan
from foreman.core.state import State, SubtaskRecord


def current_plan(state: State) -> Plan:
    """The plan the run is on."""
    return Plan.model_validate(state["plan"])


def current_records(state: State, prints: dict[str, str]) -> dict[str, SubtaskRecord]:
    """Records that belong to the current plan (same subtask spec and upstream)."""
    return {
        sid: rec
        for sid, rec in (state.get("results") or {}).items()
        if prints.get(sid) == rec["fingerprint"]
    }


def has_new_answer(state: State, rec: SubtaskRecord) -> bool:
    """Whether a person answered the record's question after its attempts ran.

    Answers are counted, not compared: the same words given again are still an answer.
    """
    if "answers" in rec:
        return (state.get("answers") or {}).get(rec["id"], 0) > rec["answers"]
    answer = (state.get("clarifications") or {}).get(rec["id"])  # a record from before counts
    return answer is not None and answer != rec.get("clarification")


def open_questions(state: State, records: dict[str, SubtaskRecord]) -> list[SubtaskRecord]:
    """Records whose worker asked a question nobody has answered yet."""
    return [
        r
        for r in records.values()
        if r["status"] == "needs_clarification" and not has_new_answer(state, r)
    ]
