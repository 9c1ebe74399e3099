"""What a remote graph's thread says: its answer, its cost, its question, and answering it.

Pure functions over the JSON a LangGraph server returns, so each case is tested without a
server. A remote Foreman is recognised by its `status` and `answer`; any other graph answers
with its last AI message. Everything read here is the remote graph's data: it becomes the
worker's output (which the parent renders as data), its error, or a question for a person,
never an instruction to a model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from foreman.core.state import FINAL_STATUSES, Usage, empty_usage

QUESTION_CHARS = 4000
"""The most of a remote question a person is shown (a plan review lists the whole plan)."""
ERROR_CHARS = 1000
"""The most of a remote error kept in the attempt's record."""
# A remote Foreman's run status -> the worker's status. `over_budget` and `partial` answers
# say what is missing, like a partial one; `unanswered` is an honest negative.
FOREMAN_STATUS = {
    "done": "done",
    "partial": "done",
    "over_budget": "done",
    "unanswered": "not_found",
    "failed": "failed",
    "aborted": "failed",
}
APPROVALS = frozenset(
    {"approve", "approved", "yes", "y", "ok", "okay", "accept", "go", "go ahead", "lgtm"}
)
"""A person's answers that approve a remote plan (or retry a remote escalation)."""


def cut(text: str, chars: int) -> str:
    """`text` cut to `chars` characters, saying so."""
    return text if len(text) <= chars else text[: chars - 1] + "…"


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a serialised message (content as a string or as content blocks)."""
    content = message.get("content")
    if isinstance(content, str):
        return content.strip()
    parts = []
    for block in content if isinstance(content, list) else []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, Mapping) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts).strip()


def _messages(values: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = values.get("messages")
    return [m for m in found if isinstance(m, Mapping)] if isinstance(found, list) else []


def _new_ai_messages(
    values: Mapping[str, Any], before: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """The AI messages the last run added (a thread keeps every earlier run's messages)."""
    seen = {m.get("id") for m in _messages(before) if m.get("id")}
    return [m for m in _messages(values) if m.get("type") == "ai" and m.get("id") not in seen]


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _foreman_usage(values: Mapping[str, Any]) -> Usage:
    """A remote Foreman's usage, summed over its models (its `usage` state key)."""
    total = empty_usage()
    by_model = values.get("usage")
    for usage in by_model.values() if isinstance(by_model, Mapping) else []:
        if isinstance(usage, Mapping):
            total["input_tokens"] += int(_number(usage.get("input_tokens")))
            total["output_tokens"] += int(_number(usage.get("output_tokens")))
            total["cost_usd"] += _number(usage.get("cost_usd"))
            total["calls"] += int(_number(usage.get("calls")))
    return total


def _since(after: Usage, before: Usage) -> Usage:
    """What a run added to a thread's running total (never below zero)."""
    return {
        "input_tokens": max(0, after["input_tokens"] - before["input_tokens"]),
        "output_tokens": max(0, after["output_tokens"] - before["output_tokens"]),
        "cost_usd": round(max(0.0, after["cost_usd"] - before["cost_usd"]), 8),
        "calls": max(0, after["calls"] - before["calls"]),
    }


def _messages_usage(messages: Iterable[Mapping[str, Any]]) -> Usage:
    """The tokens AI messages report (`usage_metadata`), one call each; no price is known."""
    total = empty_usage()
    for message in messages:
        meta = message.get("usage_metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        total["input_tokens"] += int(_number(meta.get("input_tokens")))
        total["output_tokens"] += int(_number(meta.get("output_tokens")))
        total["calls"] += 1
    return total


def is_foreman(values: Mapping[str, Any]) -> bool:
    """Whether a thread's state is a Foreman's: a run status and an answer."""
    return values.get("status") in FINAL_STATUSES and isinstance(values.get("answer"), str)


def read_answer(values: Any, before: Mapping[str, Any]) -> tuple[dict[str, Any], Usage]:
    """The worker's output and the run's usage, from the thread's state after a run.

    `before` is the state before the run, so that an earlier run's messages and usage on
    the same thread are not counted again. An odd state (not an object, no answer) is a
    failed output that says what came back.
    """
    if not isinstance(values, Mapping):
        odd = cut(repr(values), 200)
        return failed(f"the remote graph's state is not an object: {odd}"), empty_usage()
    if is_foreman(values):
        usage = _since(_foreman_usage(values), _foreman_usage(before))
        status = FOREMAN_STATUS.get(str(values["status"]), "failed")
        answer = str(values["answer"]).strip()
        if status == "done" and answer:
            return {"status": "done", "text": answer}, usage
        why = values.get("error") or answer or f"it ended {values['status']}"
        reason = f"the remote Foreman ended {values['status']}: {cut(str(why), ERROR_CHARS)}"
        return {"status": status if status != "done" else "failed", "error": reason}, usage
    new = _new_ai_messages(values, before)
    usage = _messages_usage(new)
    last = _messages(values)[-1:] or [{}]
    text = message_text(last[0]) if last[0] in new else ""
    if text:
        return {"status": "done", "text": text}, usage
    keys = ", ".join(sorted(map(str, values))) or "nothing"
    reason = f"no new AI message with text (its state holds {cut(keys, 200)})"
    return failed(f"the remote graph gave no answer: {reason}"), usage


def failed(reason: str) -> dict[str, Any]:
    """A failed attempt's output, with its reason."""
    return {"status": "failed", "error": reason, "text": ""}


def pending(interrupts: Any) -> list[Mapping[str, Any]]:
    """A thread's pending interrupts, in order (the server groups them by task)."""
    if isinstance(interrupts, Mapping):
        interrupts = [i for group in interrupts.values() for i in (group or [])]
    if not isinstance(interrupts, list):
        return []
    return [i for i in interrupts if isinstance(i, Mapping) and "value" in i and "id" in i]


def _plan_question(value: Mapping[str, Any], where: str) -> str:
    found = value.get("plan")
    plan: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    version = value.get("version") or 1
    lines = [
        f"The remote Foreman {where} asks for approval of its plan (v{version}): "
        f"{plan.get('goal', '')}"
    ]
    for sub in plan.get("subtasks") or []:
        if isinstance(sub, Mapping):
            after = f" (after {', '.join(map(str, sub['inputs']))})" if sub.get("inputs") else ""
            lines.append(f"- {sub.get('id')} ({sub.get('worker')}){after}: {sub.get('objective')}")
    if value.get("reason"):
        lines.append(f"It needs approval because: {value['reason']}")
    lines.append(
        'Answer "approve" to run this plan, or say what to change: your words go to its '
        "planner as feedback for a new plan."
    )
    return "\n".join(lines)


def question_of(value: Any, where: str) -> str:
    """A readable question for the parent's person, from a remote interrupt's value.

    Foreman's payloads (`kind`: plan_review, clarification, escalation) get their own
    wording; another graph's `question` (or `description`, or a string) is shown as it is.
    """
    if isinstance(value, Mapping):
        kind = value.get("kind")
        if kind == "plan_review":
            text = _plan_question(value, where)
        elif kind == "clarification":
            text = f"The remote Foreman {where} asks: {value.get('question')}"
        elif kind == "escalation":
            text = (
                f"A subtask of the remote Foreman {where} failed: {value.get('subtask')} "
                f'({value.get("worker")}): {value.get("failure")}\nAnswer "retry" (anything '
                'else you write goes to the retry as a note), "skip", or "abort" with a reason.'
            )
        elif isinstance(value.get("question"), str):
            text = value["question"]
        elif isinstance(value.get("description"), str):
            text = value["description"]
        else:
            text = f"The remote graph {where} asks: {json.dumps(value, default=str)}"
        if kind and value.get("error"):
            text = f"Your last answer was not used: {value['error']}\n{text}"
    else:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = str(text).strip() or f"The remote graph {where} is waiting for an answer."
    return cut(text, QUESTION_CHARS)


def _said(answer: str) -> str:
    return " ".join(answer.casefold().strip(" .!").split())


def resume_value(value: Any, answer: str) -> Any:
    """What resumes a remote interrupt, from a person's plain answer to its question.

    JSON a person wrote (an object or a list) goes as it is; a Foreman payload gets the
    answer it expects (`graph/human_review.py`); a HumanInTheLoopMiddleware request gets
    decisions; any other graph gets the text.
    """
    stripped = answer.strip()
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(stripped)
        except ValueError:
            pass
    said = _said(stripped)
    kind = value.get("kind") if isinstance(value, Mapping) else None
    if kind == "plan_review":
        if said in APPROVALS:
            return {"action": "approve"}
        return {"action": "reject", "feedback": stripped or "(no answer)"}
    if kind == "clarification":
        return {"answer": stripped or "(no answer)"}
    if kind == "escalation":
        if said in APPROVALS or said == "retry":
            return {"action": "retry"}
        if said == "skip":
            return {"action": "skip"}
        if said.startswith(("abort", "stop")):
            return {"action": "abort", "reason": stripped}
        return {"action": "retry", "note": stripped}
    if isinstance(value, Mapping) and isinstance(value.get("action_requests"), list):
        approve = said in APPROVALS
        decision = {"type": "approve"} if approve else {"type": "reject", "message": stripped}
        return {"decisions": [decision for _ in value["action_requests"]]}
    return stripped
