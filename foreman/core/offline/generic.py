"""Offline answers in a schema Foreman does not know (a declared worker's `output_schema`).

Text fields get the extractive answer from the request's inputs (its sentences, one per
item of a list of strings), numbers the inputs' first numbers, an enum the value its inputs
name; nothing is invented, and what the inputs do not hold stays out.
"""

from __future__ import annotations

import re
from typing import Any

from foreman.core.offline import engines
from foreman.core.text import sentences, tag, tag_blocks

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


def _source(human: str) -> str:
    """The text a field may be filled from: the inputs, else the objective."""
    inputs = " ".join(body for _, body in tag_blocks(tag(human, "inputs"), "input"))
    return inputs or tag(human, "objective") or human


def _fill(schema: dict[str, Any], answer: str, source: str, numbers: list[float]) -> Any:
    kind = schema.get("type")
    if "enum" in schema:
        named = [v for v in schema["enum"] if str(v).casefold() in source.casefold()]
        return (named or schema["enum"])[0]
    if kind == "object":
        return {
            name: _fill(prop, answer, source, numbers)
            for name, prop in (schema.get("properties") or {}).items()
        }
    if kind == "array":
        items = schema.get("items") or {}
        if items.get("type") == "string":
            return sentences(answer)[:5]
        return []
    if kind in ("number", "integer"):
        value = numbers.pop(0) if numbers else 0
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return False
    return answer


def fill_schema(parameters: dict[str, Any], system: str, human: str) -> dict[str, Any]:
    """Arguments for a JSON schema of the user's, from the inputs of the request."""
    answer = engines.answer(system, human)
    text = str(answer.get("text", "")) or tag(human, "objective")
    source = _source(human)
    numbers = [float(n) for n in _NUMBER.findall(source)]
    filled = _fill({**parameters, "type": "object"}, text, source, numbers)
    return filled if isinstance(filled, dict) else {}
