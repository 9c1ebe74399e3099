"""The chat side of a run: the request a conversation asks, and the messages a run adds.

Chat clients (LangGraph Studio's chat, Agent Chat UI) send `{"messages": [...]}` and show the
AI messages that come back; API and CLI callers send `{"request": "..."}`. Both work: the
request is the last human message when the conversation ends with one (a run always ends
with its answer as an AI message, so a trailing human message is new input), else
`request`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

PLAN_MESSAGE = "foreman-plan"
ANSWER_MESSAGE = "foreman-answer"
PROGRESS_MESSAGE = "foreman-progress"
_MARKS = {"accepted": "done", "supplied": "done", "not_found": "nothing found", "failed": "failed"}


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
    return "\n".join(p for p in parts if p)


def request_of(state: Mapping[str, Any]) -> str:
    """What is asked: a trailing human message, else `request` ('' when neither)."""
    messages = state.get("messages") or []
    if messages and isinstance(messages[-1], HumanMessage):
        return _text(messages[-1]).strip()
    return str(state.get("request") or "").strip()


def plan_message(plan: Mapping[str, Any]) -> AIMessage:
    """The plan, as a chat shows it: one line per subtask."""
    lines = [f"Plan ({plan.get('approach', 'plan')}): {plan.get('goal', '')}"]
    for sub in plan.get("subtasks") or []:
        needs = f" (after {', '.join(sub['inputs'])})" if sub.get("inputs") else ""
        lines.append(f"- {sub['id']} · {sub['worker']}{needs}: {sub['objective']}")
    return AIMessage(content="\n".join(lines), name=PLAN_MESSAGE)


def answer_message(answer: str, status: str) -> AIMessage:
    """The answer, as the conversation's last AI message."""
    return AIMessage(content=answer, name=ANSWER_MESSAGE, response_metadata={"status": status})


def progress_message(
    plan_version: int, subtasks: Sequence[tuple[str, str]], finished: Mapping[str, str]
) -> AIMessage:
    """Where a dispatch round is, as a chat shows it while the run goes on.

    One message per plan version (a stable id), re-sent as each subtask finishes, so a chat
    client shows it updating. `subtasks` are (id, worker) in plan order; `finished` maps the
    ids finished so far to their record status. It is streamed, not kept in the state: when
    the answer comes, the conversation holds the plan and the answer only.
    """
    lines = [f"Working: {len(finished)} of {len(subtasks)} subtasks finished"]
    for sid, worker in subtasks:
        status = finished.get(sid)
        lines.append(f"- {sid} · {worker}: {_MARKS.get(status or '', status or '…')}")
    return AIMessage(
        content="\n".join(lines), name=PROGRESS_MESSAGE, id=f"foreman-progress-v{plan_version}"
    )


def messages_streamed() -> bool:
    """Whether the run streams messages to a client (`stream_mode="messages"`).

    Progress messages are built only then: a run nobody watches that way skips the work.
    """
    from foreman.orchestration.audit import callback_handlers

    try:  # the handler LangGraph adds for the messages stream (what `push_message` writes to)
        from langgraph.pregel._messages import StreamMessagesHandler
    except ImportError:  # renamed in a later LangGraph: build them, as before
        return True
    return any(isinstance(h, StreamMessagesHandler) for h in callback_handlers())
