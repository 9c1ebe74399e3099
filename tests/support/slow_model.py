"""A scripted chat model whose chosen calls take time, logged like the simulated workers.

Crash tests kill a child process while a model call is in flight: a held call writes
`start LABEL` to $SIM_LOG, waits, answers, then writes `end LABEL`, so the parent can
wait for the marker instead of guessing with a sleep.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import PrivateAttr

from tests.support import sim
from tests.support.scripted import ScriptedChatModel


@dataclass(frozen=True)
class Hold:
    """Calls that ask for `schema` with `contains` in the prompt wait `seconds`."""

    schema: str
    contains: str
    label: str
    seconds: float


class SlowScriptedChatModel(ScriptedChatModel):
    """A `ScriptedChatModel` whose calls matching a `Hold` are slow and logged."""

    _holds: list[Hold] = PrivateAttr(default_factory=list)

    def hold(self, schema: str, contains: str, label: str, seconds: float) -> SlowScriptedChatModel:
        """Make matching calls log `start LABEL`, wait `seconds`, answer, log `end LABEL`."""
        self._holds.append(Hold(schema, contains, label, seconds))
        return self

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools = kwargs.get("tools") or []
        schema = tools[0]["function"]["name"] if tools else "text"
        prompt = "\n".join(str(m.content) for m in messages)
        held = next((h for h in self._holds if h.schema == schema and h.contains in prompt), None)
        if held is None:
            return await super()._agenerate(messages, stop, run_manager, **kwargs)
        sim.log(f"start {held.label}")
        await asyncio.sleep(held.seconds)
        result = await super()._agenerate(messages, stop, run_manager, **kwargs)
        sim.log(f"end {held.label}")
        return result
