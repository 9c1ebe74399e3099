"""Loopback models for a server under test: Foreman's offline engines behind an OpenAI API.

`EngineResponder` answers each chat request the way `ChatOpenAI` expects, with the offline
engine of the schema the request asks for, and records which model was asked what, so a
test can tell which `Context` a run used and which subtasks it (re)ran, and how many
requests were in flight at once (`peak`, which `max_parallel` bounds). Two scripted
behaviours: a model that asks a question instead of researching (until it is given an
answer), and a `Hold` that keeps one subtask's request waiting until the test releases it.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from foreman.core.offline.model import ENGINES, text_answer
from tests.support.openai_server import (
    Reply,
    requested_schema_name,
    split_messages,
    structured_reply,
)


def offline_reply(request: dict[str, Any]) -> Reply:
    """What the offline model answers a chat request with, as an OpenAI-compatible server.

    A structured request (a tool or a json_schema) gets the offline engine of its schema; a
    text request (the synthesizer's answer) gets the offline text, streamed if asked.
    """
    system, human = split_messages(request)
    schema = requested_schema_name(request)
    if schema is None:
        return Reply(content=text_answer(system, human))
    if schema not in ENGINES:
        return Reply(error=(400, f"test server: no offline engine for schema {schema!r}"))
    return structured_reply(request, ENGINES[schema](system, human))


OBJECTIVE = re.compile(r"<objective>(.*?)</objective>", re.S)
CLARIFICATION = re.compile(r"<clarification>(.*?)</clarification>", re.S)
ASK = {"status": "needs_clarification", "question": "Which aspect?", "findings": []}


@dataclass(frozen=True)
class Call:
    """One chat request the server received."""

    model: str
    schema: str | None
    objective: str
    clarification: str


@dataclass
class Hold:
    """Keep requests of `model` whose objective contains `objective` until released."""

    model: str
    objective: str
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    timeout_s: float = 60.0


class EngineResponder:
    """Answer like a deterministic model; record every request.

    Attributes:
        askers: Model names that answer `ResearchFindings` with a question while the
            request carries no clarification.
        hold: Requests to keep waiting, if any.
        latency_s: How long each answer takes, so that concurrent requests overlap.
    """

    def __init__(self) -> None:
        self.askers: set[str] = set()
        self.hold: Hold | None = None
        self.latency_s = 0.0
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self._peak = 0

    @property
    def calls(self) -> list[Call]:
        """Every request so far, in arrival order."""
        with self._lock:
            return list(self._calls)

    @property
    def peak(self) -> int:
        """Most requests in flight at once since the last `reset_peak`."""
        with self._lock:
            return self._peak

    def reset_peak(self) -> None:
        with self._lock:
            self._peak = self._in_flight

    def reset(self) -> None:
        """Forget scripted behaviour (a held request is let go first)."""
        if self.hold is not None:
            self.hold.released.set()
        self.askers, self.hold, self.latency_s = set(), None, 0.0

    def __call__(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
        try:
            time.sleep(self.latency_s)
            return self._answer(request)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _answer(self, request: dict[str, Any]) -> Reply:
        model = str(request.get("model"))
        schema = requested_schema_name(request)
        system, human = split_messages(request)
        found = OBJECTIVE.search(human)
        asked = CLARIFICATION.search(human)
        call = Call(model, schema, found.group(1) if found else "", asked.group(1) if asked else "")
        with self._lock:
            self._calls.append(call)
        if schema is None:  # a text call (the synthesizer's answer), streamed if asked
            return Reply(content=text_answer(system, human), prompt_tokens=10, completion_tokens=5)
        if schema not in ENGINES:
            return Reply(error=(400, f"test server: no offline engine for schema {schema!r}"))
        hold = self.hold
        if hold is not None and model == hold.model and hold.objective in call.objective:
            hold.arrived.set()
            hold.released.wait(hold.timeout_s)
        if model in self.askers and schema == "ResearchFindings" and not call.clarification:
            args = ASK
        else:
            args = ENGINES[schema](system, human)
        reply = structured_reply(request, args)
        reply.prompt_tokens, reply.completion_tokens = 10, 5
        return reply
