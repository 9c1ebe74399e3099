"""A scripted chat model for unit tests: answers chosen by the content of the prompt.

Parallel workers call models in any order, so responses are picked by rules that match
the requested schema and a substring of the prompt, never by call order. A call that no
rule matches falls through to Foreman's offline engines.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from foreman.core.offline.model import ENGINES, OfflineChatModel

# A structured answer (dict), a text call's answer (str), either made from the prompt, or
# an exception to raise.
Response = (
    dict[str, Any] | str | Callable[[str], dict[str, Any]] | Callable[[str], str] | BaseException
)


@dataclass
class Rule:
    """When a call asks for `schema` and its prompt contains `contains`, answer `response`.

    `schema` is `"text"` for a plain text call (the synthesizer's answer).
    """

    schema: str
    contains: str | tuple[str, ...]
    response: Response
    times: int | None = None  # answer this many times, then stop matching
    used: int = 0


def _matches(contains: str | tuple[str, ...], prompt: str) -> bool:
    needles = (contains,) if isinstance(contains, str) else contains
    return all(n in prompt for n in needles)


@dataclass
class Call:
    """One recorded call."""

    schema: str
    prompt: str
    rule: Rule | None


class ScriptedChatModel(OfflineChatModel):
    """Offline model with scripted overrides; counts tokens as 10 in / 5 out per call."""

    _rules: list[Rule] = PrivateAttr(default_factory=list)
    _calls: list[Call] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def on(
        self,
        schema: str,
        contains: str | tuple[str, ...],
        response: Response,
        times: int | None = None,
    ) -> ScriptedChatModel:
        """Add a rule; `contains` may be several substrings that must all occur."""
        self._rules.append(Rule(schema, contains, response, times))
        return self

    @property
    def calls(self) -> list[Call]:
        return list(self._calls)

    def calls_for(self, schema: str, contains: str = "") -> list[Call]:
        return [c for c in self._calls if c.schema == schema and contains in c.prompt]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools = kwargs.get("tools") or []
        schema = tools[0]["function"]["name"] if tools else "text"
        prompt = "\n".join(str(m.content) for m in messages)
        with self._lock:
            rule = next(
                (
                    r
                    for r in self._rules
                    if r.schema == schema
                    and _matches(r.contains, prompt)
                    and (r.times is None or r.used < r.times)
                ),
                None,
            )
            if rule is not None:
                rule.used += 1
            self._calls.append(Call(schema, prompt, rule))
        if rule is None:
            result = super()._generate(messages, stop, run_manager, **kwargs)
            msg = result.generations[0].message
            assert isinstance(msg, AIMessage)
            msg.usage_metadata = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
            return result
        if isinstance(rule.response, BaseException):
            raise rule.response
        args = rule.response(prompt) if callable(rule.response) else rule.response
        if tools:
            assert isinstance(args, dict), f"a {schema} call is answered with a dict"
            message = AIMessage(
                content="", tool_calls=[{"name": schema, "args": args, "id": "scripted"}]
            )
        else:
            message = AIMessage(content=args if isinstance(args, str) else json.dumps(args))
        message.usage_metadata = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
        return ChatResult(generations=[ChatGeneration(message=message)])


assert set(ENGINES)  # the fallback engines exist
