"""Interrupts in the shapes the standard LangGraph UIs render, and their answers read back.

An interrupt value is Foreman's own payload (`kind`, `plan`, `expected`, `error`, ...: what
the CLI reads) with two UI schemas added, so a client renders it with no Foreman code:

- `action_requests` / `review_configs`: langchain's `HITLRequest` (HumanInTheLoopMiddleware),
  what Agent Chat UI renders since its "interrupt schema 1.0" (answers
  `{"decisions": [{"type": "approve" | "edit" | "reject", ...}]}`);
- `action_request` / `config` / `description`: the earlier `HumanInterrupt`, what Agent Inbox
  and the Agent Chat UI of `npx create-agent-chat-app` render (answers
  `[{"type": "accept" | "edit" | "response" | "ignore", "args": ...}]`).

`from_ui` turns either answer into Foreman's resume payload before it is validated; any
other answer (Foreman's own payloads) passes through unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class AnswerError(ValueError):
    """An answer of the right shape that cannot be acted on; the message says why."""


# kind -> (action name, HITL decisions allowed, HumanInterrupt config)
OFFERS: dict[str, tuple[str, list[str], dict[str, bool]]] = {
    "plan_review": (
        "review_plan",
        ["approve", "edit", "reject"],
        {"allow_accept": True, "allow_edit": True, "allow_respond": True, "allow_ignore": False},
    ),
    "clarification": (
        "answer_question",
        ["edit", "respond"],
        {"allow_accept": False, "allow_edit": False, "allow_respond": True, "allow_ignore": False},
    ),
    "escalation": (
        "subtask_failed",
        ["approve", "edit", "reject"],
        {"allow_accept": True, "allow_edit": True, "allow_respond": True, "allow_ignore": True},
    ),
}
DECISION_TYPES = {"approve", "accept", "edit", "reject", "respond", "response", "ignore"}
PLAN_LISTS = ("subtasks", "left_out")  # edited in a text box, so they come back as JSON text
ESCALATION_FIELDS = ("action", "model", "note", "result", "reason")


def _args(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What the person sees, and edits where editing is allowed."""
    kind = payload["kind"]
    if kind == "plan_review":
        return dict(payload["plan"])
    if kind == "clarification":
        return {"subtask": payload["subtask"], "question": payload["question"], "answer": ""}
    return {
        "subtask": payload["subtask"],
        "worker": payload["worker"],
        "failure": payload["failure"],
        "action": "retry",
        "model": "",
        "note": "",
        "result": "",
        "reason": "",
    }


def _description(payload: Mapping[str, Any]) -> str:
    """Markdown: the question, and what each answer does."""
    kind = payload["kind"]
    lines = []
    if payload.get("error"):
        lines.append(f"**Your last answer was not used:** {payload['error']}\n")
    if kind == "plan_review":
        plan = payload["plan"]
        if payload.get("reason"):
            lines.append(f"**Needs approval:** {payload['reason']}\n")
        lines.append(f"**Plan v{payload.get('version') or 1}:** {plan.get('goal', '')}\n")
        for sub in plan.get("subtasks") or []:
            after = f" (after {', '.join(sub['inputs'])})" if sub.get("inputs") else ""
            lines.append(f"- `{sub['id']}` {sub['worker']}{after}: {sub['objective']}")
        lines.append(
            "\nAccept runs this plan; edit changes it (subtasks as JSON); "
            "respond or reject with feedback asks the planner for a new plan."
        )
    elif kind == "clarification":
        lines.append(f"**{payload['subtask']} asks:** {payload['question']}\n")
        lines.append("Respond with the answer (or edit `answer`).")
    else:
        who = f"{payload['subtask']} ({payload['worker']})"
        lines.append(f"**{who} failed:** {payload['failure']}\n")
        lines.append(
            "Accept retries it; respond or reject with a reason aborts the run; ignore skips "
            "it; edit sets `action` to retry (with `model`, `note`), skip, supply (with "
            "`result`) or abort (with `reason`)."
        )
    return "\n".join(lines)


def offer(payload: dict[str, Any]) -> dict[str, Any]:
    """The interrupt value: `payload` with the UI schemas added."""
    name, decisions, config = OFFERS[payload["kind"]]
    args, description = _args(payload), _description(payload)
    return {
        **payload,
        "action_requests": [{"name": name, "args": args, "description": description}],
        "review_configs": [{"action_name": name, "allowed_decisions": decisions}],
        "action_request": {"action": name, "args": args},
        "config": config,
        "description": description,
    }


def _decision(answer: Any) -> dict[str, Any] | None:
    """The one UI decision in `answer`, or None when it is not a UI answer."""
    if isinstance(answer, Mapping) and isinstance(answer.get("decisions"), list):
        found: Any = answer["decisions"]  # HITLResponse
    elif isinstance(answer, list) and answer and all(isinstance(d, Mapping) for d in answer):
        found = answer  # a list of HumanResponse
    elif isinstance(answer, Mapping) and answer.get("type") in DECISION_TYPES:
        found = [answer]  # one decision, unwrapped
    else:
        return None
    if not all(isinstance(d, Mapping) and d.get("type") in DECISION_TYPES for d in found):
        raise AnswerError(f"each decision needs a type: {', '.join(sorted(DECISION_TYPES))}")
    if len(found) != 1:
        raise AnswerError(f"one decision expected for this question, got {len(found)}")
    return dict(found[0])


def _edited_args(decision: Mapping[str, Any]) -> dict[str, Any]:
    """The edited args: `edited_action.args` (HITL) or `args.args` (HumanResponse)."""
    action = decision.get("edited_action") or decision.get("args")
    args = action.get("args") if isinstance(action, Mapping) else None
    if not isinstance(args, Mapping):
        raise AnswerError("an edit needs the edited action's args")
    return dict(args)


def _message(decision: Mapping[str, Any]) -> Any:
    """A reject's or respond's message, or a HumanResponse's response text."""
    if decision["type"] == "response":
        return decision.get("args") or ""
    return decision.get("message") or ""


def _plan(args: dict[str, Any]) -> dict[str, Any]:
    for key in PLAN_LISTS:
        if isinstance(args.get(key), str):
            try:
                args[key] = json.loads(args[key])
            except ValueError as exc:
                raise AnswerError(f"the edited {key} is not JSON: {exc}") from exc
    return args


def from_ui(kind: str, answer: Any) -> Any:
    """Foreman's resume payload for a UI's answer to a `kind` interrupt; else `answer`."""
    decision = _decision(answer)
    if decision is None:
        return answer
    typ = decision["type"]
    said = typ in ("reject", "respond", "response")
    if kind == "plan_review":
        if typ in ("approve", "accept"):
            return {"action": "approve"}
        if typ == "edit":
            return {"action": "edit", "plan": _plan(_edited_args(decision))}
        if said:
            return {"action": "reject", "feedback": _message(decision)}
    elif kind == "clarification":
        if typ == "edit":
            return {"answer": _edited_args(decision).get("answer")}
        if said:
            return {"answer": _message(decision)}
    elif kind == "escalation":
        if typ in ("approve", "accept"):
            return {"action": "retry"}
        if typ == "ignore":
            return {"action": "skip"}
        if typ == "edit":
            args = _edited_args(decision)
            return {k: args[k] for k in ESCALATION_FIELDS if args.get(k) not in (None, "")}
        if said:
            return {"action": "abort", "reason": _message(decision)}
    name, decisions, _ = OFFERS[kind]
    raise AnswerError(f"{typ!r} does not answer {name}; it takes {', '.join(decisions)}")
