"""The request set (`tests/data/requests.json`): run each request, and judge its outcome.

Used by `tests/test_request_set.py` and `bench/honesty.py`. A request runs on the offline
provider, or through a real `ChatOpenAI` against a loopback server whose planner follows the
set's `model` decision (direct answer, decline, one subtask, a plan) and whose workers and
synthesizer are Foreman's offline engines: that path measures what each decision costs in
model calls and subtasks, not any model's judgement.
"""

from __future__ import annotations

import html
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foreman import Context
from foreman.core.text import tag
from tests.support.engine_models import offline_reply
from tests.support.openai_server import (
    Reply,
    requested_schema_name,
    split_messages,
    structured_reply,
)

SET = Path(__file__).resolve().parent.parent / "data" / "requests.json"
ANSWERED = ("done", "partial")


def load_set() -> list[dict[str, Any]]:
    """The requests, each with its category and expected outcomes."""
    return list(json.loads(SET.read_text(encoding="utf-8"))["requests"])


@dataclass
class Outcome:
    """How one request ended, and what it cost."""

    status: str
    answer: str
    approach: str
    subtasks: int
    calls: int
    """Model calls in all."""
    worker_calls: int
    """Of those, calls made by workers (the rest are the orchestrator's: plan, judge, synthesis)."""
    answered_how: str = ""
    paused: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def orchestrator_calls(self) -> int:
        return self.calls - self.worker_calls


async def run_request(app: Any, entry: dict[str, Any], ctx: Context) -> Outcome:
    """Run one request of the set to its end (or its first question) on a new thread."""
    config: Any = {"configurable": {"thread_id": uuid.uuid4().hex}}
    given = {"request": entry["request"]}
    if entry.get("sender"):
        given["sender"] = entry["sender"]
    await app.ainvoke(given, config, context=ctx)
    state = await app.aget_state(config)
    values = state.values
    plan = values.get("plan") or {}
    usage = values.get("usage") or {}
    calls = sum(u["calls"] for u in usage.values())
    worker_calls = sum(
        a["usage"]["calls"] for r in (values.get("results") or {}).values() for a in r["attempts"]
    )
    how = [e["detail"].get("how") for e in values.get("audit", []) if e["kind"] == "synthesis"]
    return Outcome(
        status=str(values.get("status")),
        answer=str(values.get("answer") or ""),
        approach=str(plan.get("approach", "plan")),
        subtasks=len(plan.get("subtasks") or []),
        calls=calls,
        worker_calls=worker_calls,
        answered_how=str(how[-1]) if how else "",
        paused=bool(state.interrupts),
    )


def wrong_topic_done(entry: dict[str, Any], out: Outcome) -> bool:
    """A run that ended `done` with an answer that is not about what was asked."""
    if out.status != "done":
        return False
    if entry["offline"] == "not_answered" and out.approach != "direct":
        return True  # offline, or a plan that went ahead on a request it could not answer
    return any(t.lower() not in out.answer.lower() for t in entry.get("terms", []))


def offline_problems(entry: dict[str, Any], out: Outcome) -> list[str]:
    """How an offline run missed the outcome the set expects of it (empty: as expected)."""
    kind = entry["offline"]
    problems = []
    if kind == "not_answered":
        if out.status != "unanswered":
            problems.append(f"status {out.status}, expected unanswered")
        if "#p" in out.answer:
            problems.append("the answer cites documents though nothing should answer it")
        return problems
    if out.paused:
        return ["paused for a question"]
    if out.status not in ANSWERED:
        problems.append(f"status {out.status}, expected an answer")
    missing = [t for t in entry.get("terms", []) if t.lower() not in out.answer.lower()]
    if missing:
        problems.append(f"the answer does not mention {missing}")
    return problems


def model_problems(entry: dict[str, Any], out: Outcome) -> list[str]:
    """How a scripted-model run missed what the decision it was given must cost."""
    decision = entry["model"]
    problems = []
    if decision in ("direct", "decline"):
        expected = "done" if decision == "direct" else "unanswered"
        if (out.approach, out.status, out.calls) != (decision, expected, 1):
            problems.append(
                f"{out.approach}/{out.status} in {out.calls} call(s), expected {decision}/"
                f"{expected} in 1"
            )
        if entry["model_answer"] not in out.answer:
            problems.append("the planner's answer is not the answer")
    elif decision == "one":
        if out.subtasks != 1 or out.orchestrator_calls != 1 or out.answered_how != "single_result":
            problems.append(
                f"{out.subtasks} subtask(s), {out.orchestrator_calls} orchestrator call(s), "
                f"answered {out.answered_how}; expected 1, 1, single_result"
            )
    elif out.subtasks < 2:
        problems.append(f"{out.subtasks} subtask(s) for a multi-part request")
    if decision != "decline" and out.status not in ANSWERED:
        problems.append(f"status {out.status}")
    return problems


class FollowTheSet:
    """A loopback model: the planner decides as the set says; everything else is offline."""

    def __init__(self) -> None:
        self.by_request = {e["request"]: e for e in load_set()}

    def __call__(self, request: dict[str, Any]) -> Reply:
        schema = str(requested_schema_name(request))
        system, human = split_messages(request)
        if schema == "Plan":
            entry = self.by_request.get(html.unescape(tag(human, "request")))
            if entry is not None and entry["model"] in ("direct", "decline"):
                decided = {
                    "goal": entry["request"],
                    "approach": entry["model"],
                    "rationale": "a simple request" if entry["model"] == "direct" else "",
                    "answer": entry["model_answer"],
                    "subtasks": [],
                }
                return structured_reply(request, decided)
        return offline_reply(request)
