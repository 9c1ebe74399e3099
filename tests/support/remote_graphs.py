"""Small graphs a second `langgraph dev` serves, for the `remote_graph` worker tests.

- `capitals`: a chat graph answering which city is a country's capital, with usage on its
  AI message; a message naming no country it knows makes it ask which (an interrupt).
- `slow`: answers after `SLOW_S` seconds, past any test's `timeout_s`.
- `garbage`: ends with an odd state and no AI message.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Kenya": "Nairobi", "Peru": "Lima"}
SLOW_S = 20.0
USAGE = {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}


def _text(message: AnyMessage) -> str:
    return message.text if isinstance(message, HumanMessage) else ""


def _country(text: str) -> str | None:
    found = [c for c in CAPITALS if re.search(rf"\b{c}\b", text)]
    return found[0] if found else None


def answer_capital(state: MessagesState) -> dict[str, Any]:
    """Name the capital of the country the last human message names; ask when none."""
    asked = _text(state["messages"][-1])
    country = _country(asked)
    if country is None:
        answer = interrupt({"question": "Which country's capital do you want?"})
        country = _country(str(answer))
    text = (
        f"The capital of {country} is {CAPITALS[country]}."
        if country
        else "I know no capital for that."
    )
    return {"messages": [AIMessage(text, usage_metadata=dict(USAGE))]}  # type: ignore[arg-type]


async def sleep_then_answer(state: MessagesState) -> dict[str, Any]:
    """Answer, but only after `SLOW_S` seconds."""
    await asyncio.sleep(SLOW_S)
    return {"messages": [AIMessage("Too late.")]}


class OddState(TypedDict, total=False):
    """A state with messages in, and something else out."""

    messages: list[Any]
    result: dict[str, Any]


def answer_oddly(state: OddState) -> dict[str, Any]:
    """Return no messages at all: an object where an answer should be."""
    return {"messages": [], "result": {"rows": [1, 2, 3]}}


def _one_node(name: str, node: Any, schema: Any = MessagesState) -> Any:
    builder = StateGraph(schema)
    builder.add_node(node.__name__, node)
    builder.add_edge(START, node.__name__)
    builder.add_edge(node.__name__, END)
    return builder.compile(name=name)


capitals = _one_node("capitals", answer_capital)
slow = _one_node("slow", sleep_then_answer)
garbage = _one_node("garbage", answer_oddly, OddState)
