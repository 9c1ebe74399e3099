"""Offline tool use: which tools an objective calls for, their arguments, and the answer.

The offline model has no language understanding, so a tool-using worker gets one round of
calls: each tool whose name or description shares words with the objective, its numeric
arguments taken from the objective's numbers in order and its text arguments from quoted
text in the objective (else the objective itself). It then answers with what the tools
returned, verbatim. Data the objective does not spell out needs a real model.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from foreman.core.text import keywords, tag

MOST_TOOLS = 3
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
_QUOTED = re.compile(r"[\"“]([^\"“”]{1,200})[\"”]")


def _words(text: str) -> set[str]:
    return set(keywords(re.sub(r"[_\-]", " ", text)))


def _arguments(parameters: dict[str, Any], objective: str) -> dict[str, Any]:
    """Arguments for a tool's JSON schema, read off the objective."""
    numbers = [float(n) for n in _NUMBER.findall(objective)]
    quoted = [q.strip() for q in _QUOTED.findall(objective)]
    plain = objective.strip().rstrip(".")
    args: dict[str, Any] = {}
    for name, prop in (parameters.get("properties") or {}).items():
        kind = prop.get("type")
        if "enum" in prop:
            named = [v for v in prop["enum"] if str(v).casefold() in objective.casefold()]
            args[name] = (named or prop["enum"])[0]
        elif kind in ("number", "integer"):
            if numbers:
                value = numbers.pop(0)
                args[name] = int(value) if kind == "integer" else value
        elif kind == "string":
            args[name] = quoted.pop(0) if quoted else plain
        elif kind == "boolean":
            args[name] = False
    required = parameters.get("required") or []
    return args if all(r in args for r in required) else {}


def tool_calls_for(human: str, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calls one round makes: tools sharing words with the objective, best first."""
    objective = tag(human, "objective") or human
    wanted = _words(objective)
    scored = []
    for n, tool in enumerate(tools):
        function = tool.get("function", tool)
        shared = len(wanted & _words(f"{function['name']} {function.get('description', '')}"))
        if shared or len(tools) == 1:
            scored.append((-shared, n, function))
    calls = []
    for _, n, function in sorted(scored)[:MOST_TOOLS]:
        args = _arguments(function.get("parameters") or {}, objective)
        if args or not (function.get("parameters") or {}).get("required"):
            calls.append({"name": function["name"], "args": args, "id": f"offline-call-{n}"})
    return calls


def agent_turn(messages: list[BaseMessage], human: str, tools: list[dict[str, Any]]) -> AIMessage:
    """The offline model's next message in a tool-calling loop."""
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        results.insert(0, message)
    if results:
        lines = [
            f"- `{m.name or 'tool'}`"
            + (" failed: " if m.status == "error" else " returned: ")
            + " ".join(m.text.split())
            for m in results
        ]
        return AIMessage(content="What the tools returned (offline mode):\n" + "\n".join(lines))
    if calls := tool_calls_for(human, tools):
        return AIMessage(content="", tool_calls=calls)
    return AIMessage(
        content="Offline mode found no tool whose name or description matches this objective, "
        "or could not read the tool's arguments off it; a configured model can."
    )
